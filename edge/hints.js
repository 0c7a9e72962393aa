// Client hints at the nginx edge: /images/{id}/auto[.{fmt}] folds Sec-CH-Width, Sec-CH-DPR and
// Sec-CH-Viewport-Width into one allowed width (origin/pipeline/hints.py is the reference rule;
// the same whole-milli-pixel arithmetic, so both give the same width for the same headers).
//
// `width` backs `js_set $hint_width`: "" for every other path, else the width class. The cache key
// carries the class, never the raw hints, and the origin is sent `Sec-CH-Width: {class}` alone.
// `contentDpr` backs `js_set $content_dpr`: the served width (the origin's X-Image-Width, on a hit
// too) over this client's CSS width, for the Content-DPR header; "" when no hint gave a CSS width.
import settings from 'edge_settings.js';

var AUTO = /^\/images\/[^\/]+\/auto(?:\.[a-z0-9]+)?$/;
var WIDTH = /^[ \t]*([0-9]{1,6})[ \t]*$/;
var DPR = /^[ \t]*([0-9]{1,2})(?:\.([0-9]{1,3}))?[ \t]*$/;

function widthOf(text) {
    var m = WIDTH.exec(text || '');
    var value = m ? parseInt(m[1], 10) : 0;
    return value > 0 ? value : null;
}

function dprMilli(text) {
    var m = DPR.exec(text || '');
    if (!m) {
        return null;
    }
    var value = parseInt(m[1], 10) * 1000 + parseInt(((m[2] || '') + '000').slice(0, 3), 10);
    return value > 0 ? value : null;
}

function hints(r) {
    var h = r.headersIn;
    return {width: widthOf(h['Sec-CH-Width']), viewport: widthOf(h['Sec-CH-Viewport-Width']),
            dpr: dprMilli(h['Sec-CH-DPR'])};
}

function widthClass(hint) {
    var needed = hint.width ? hint.width * 1000
        : hint.viewport ? hint.viewport * (hint.dpr || 1000) : settings.autoWidth * 1000;
    var widths = settings.widths.slice().sort(function (a, b) { return a - b; });
    for (var i = 0; i < widths.length; i++) {
        if (widths[i] * 1000 >= needed) {
            return widths[i];
        }
    }
    return widths[widths.length - 1];
}

function width(r) {
    return AUTO.test(r.uri) ? String(widthClass(hints(r))) : '';
}

function contentDpr(r) {
    var served = widthOf(r.headersOut['X-Image-Width']);
    if (!AUTO.test(r.uri) || !served) {
        return '';
    }
    var hint = hints(r), num, den;
    if (hint.width) {
        num = served * (hint.dpr || 1000);
        den = hint.width * 1000;
    } else if (hint.viewport) {
        num = served;
        den = hint.viewport;
    } else {
        return '';
    }
    var milli = Math.floor((2000 * num + den) / (2 * den));
    var text = Math.floor(milli / 1000) + '.' + ('00' + (milli % 1000)).slice(-3);
    return text.replace(/\.?0+$/, '');
}

export default {width, contentDpr};
