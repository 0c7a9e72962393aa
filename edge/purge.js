// POST /purge/images/{id}: remove every cached variant of one image (loopback only).
//
// The edge's cache key is "{path}|{format class}" (nginx/edge.conf.template), and
// "{path}|{format class}|{digest}" for a preset (edge/presets.py).
// Every key an image can have is enumerated from the allow-lists rendered into
// edge_settings.js (original, placeholder; w{n}, sq{n}, sm{n} and the presets in every output
// format, and without an extension once per format class; auto and auto.{fmt} once per width
// class), and each cache file is unlinked
// where nginx keeps it: {cache}/{levels from the end of md5(key)}/{md5(key)}.
// nginx then treats the entry as a miss. (Debian's ngx_cache_purge 2.3 crashes
// the worker on nginx 1.22.1-9+deb12u11 and has no partial keys; see edge/README.md.)
import settings from 'edge_settings.js';
import crypto from 'crypto';
import fs from 'fs';

var ID = /^\/purge\/images\/([A-Za-z0-9_-]{6,64})$/;

function keysFor(id) {
    var base = '/images/' + id + '/';
    var keys = [base + 'original|-', base + 'placeholder|-'];
    var kinds = [['w', settings.widths], ['sq', settings.thumbs], ['sm', settings.thumbs]];
    kinds.forEach(function (kind) {
        kind[1].forEach(function (size) {
            var name = base + kind[0] + size;
            settings.formats.forEach(function (fmt) { keys.push(name + '.' + fmt + '|-'); });
            settings.classes.forEach(function (cls) { keys.push(name + '|' + cls); });
        });
    });
    settings.presets.forEach(function (preset) {
        var name = base + preset.name;
        var tag = '|' + preset.digest;
        settings.formats.forEach(function (fmt) { keys.push(name + '.' + fmt + '|-' + tag); });
        settings.classes.forEach(function (cls) { keys.push(name + '|' + cls + tag); });
    });
    settings.widths.forEach(function (width) {  // /auto: "{path}|{format class}|w{width class}"
        var hint = '|w' + width;
        settings.formats.forEach(function (fmt) { keys.push(base + 'auto.' + fmt + '|-' + hint); });
        settings.classes.forEach(function (cls) { keys.push(base + 'auto|' + cls + hint); });
    });
    return keys;
}

function cachePath(key) {
    var hash = crypto.createHash('md5').update(key).digest('hex');
    var path = settings.cacheDir;
    var end = hash.length;
    settings.levels.forEach(function (width) {
        path += '/' + hash.slice(end - width, end);
        end -= width;
    });
    return path + '/' + hash;
}

function answer(r, status, body) {
    r.headersOut['Content-Type'] = 'application/json';
    r.headersOut['Cache-Control'] = 'no-store';
    r.return(status, JSON.stringify(body) + '\n');
}

function purge(r) {
    var match = ID.exec(r.uri);
    if (!match) {
        answer(r, 400, {error: 'invalid_request', message: 'expected /purge/images/{id}'});
        return;
    }
    var keys = keysFor(match[1]);
    var removed = 0;
    for (var i = 0; i < keys.length; i++) {
        try {
            fs.unlinkSync(cachePath(keys[i]));
            removed++;
        } catch (e) {
            if (e.code !== 'ENOENT') {
                answer(r, 500, {error: 'purge_failed', message: String(e)});
                return;
            }
        }
    }
    answer(r, 200, {image_id: match[1], keys: keys.length, removed: removed});
}

export default {purge};
