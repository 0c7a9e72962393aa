"""GET /openapi.json: the OpenAPI 3.1 description of every /v1 endpoint."""
from __future__ import annotations

ERROR = {"$ref": "#/components/schemas/Error"}
ID_PARAM = {"name": "image_id", "in": "path", "required": True,
            "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{6,64}$"}}


def _errors(*codes: int) -> dict:
    text = {400: "Malformed request", 401: "Missing or unknown API key", 403: "Not allowed",
            404: "No such image (or not yours)", 413: "Over the size limit", 415: "Not an accepted image type",
            503: "A backing service is unavailable; retry later"}
    return {str(c): {"description": text[c], "content": {"application/json": {"schema": ERROR}}} for c in codes}


def _json(schema: dict, description: str = "OK") -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def spec(version: str = "0.1.0") -> dict:
    image = {"$ref": "#/components/schemas/Image"}
    return {
        "openapi": "3.1.0",
        "info": {"title": "imagehost API", "version": version,
                 "description": "Upload, follow, list, delete and review images. Delivery URLs "
                                "(/images/{id}/...) are described in the README."},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error", "message"],
                          "properties": {"error": {"type": "string"}, "message": {"type": "string"}}},
                "UploadRequest": {"type": "object", "properties": {
                    "filename": {"type": "string", "maxLength": 255},
                    "content_type": {"type": "string", "maxLength": 100},
                    "size": {"type": "integer", "minimum": 0},
                    "callback_url": {"type": "string", "format": "uri", "maxLength": 2000}}},
                "UploadTarget": {"type": "object", "required": ["id", "method", "url", "expires_at", "status_url"],
                                 "properties": {
                                     "id": {"type": "string"}, "method": {"enum": ["PUT", "POST"]},
                                     "url": {"type": "string"},
                                     "headers": {"type": "object", "additionalProperties": {"type": "string"}},
                                     "fields": {"type": "object", "additionalProperties": {"type": "string"}},
                                     "expires_at": {"type": "string"}, "max_bytes": {"type": "integer"},
                                     "status_url": {"type": "string"}}},
                "Image": {"type": "object", "required": ["id", "state", "status_url"], "properties": {
                    "id": {"type": "string"},
                    "state": {"enum": ["requested", "uploaded", "validating", "moderating", "processing",
                                       "ready", "quarantined", "held"]},
                    "reason": {"type": "string"}, "detail": {"type": "string"},
                    "width": {"type": "integer"}, "height": {"type": "integer"},
                    "metadata": {"type": "object"}, "urls": {"type": "object"}, "srcset": {"type": "string"},
                    "thumbhash": {"type": ["string", "null"], "description": "base64 ThumbHash"},
                    "placeholder": {"type": ["string", "null"], "description": "the ThumbHash as a data: URI PNG"},
                    "status_url": {"type": "string"}}},
            },
        },
        "security": [{"bearer": []}],
        "paths": {
            "/v1/uploads": {"post": {
                "summary": "Ask for a pre-signed upload URL",
                "requestBody": {"required": False,
                                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/UploadRequest"}}}},
                "responses": {"201": _json({"$ref": "#/components/schemas/UploadTarget"}, "Upload URL issued"),
                              **_errors(400, 401, 413, 415, 503)}}},
            "/v1/uploads/{image_id}": {"put": {
                "summary": "Upload the bytes (local store's upload URL; the token comes from POST /v1/uploads)",
                "security": [],
                "parameters": [ID_PARAM, {"name": "token", "in": "query", "required": True, "schema": {"type": "string"}}],
                "requestBody": {"required": True, "content": {"application/octet-stream": {
                    "schema": {"type": "string", "format": "binary"}}}},
                "responses": {"201": _json(image, "Accepted; validation follows"), **_errors(400, 403, 413, 503)}}},
            "/v1/images": {"get": {
                "summary": "List your images, newest first",
                "parameters": [{"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200}},
                               {"name": "cursor", "in": "query",
                                "schema": {"type": "integer", "minimum": 0, "maximum": 2**62}}],
                "responses": {"200": _json({"type": "object", "properties": {
                    "items": {"type": "array", "items": image},
                    "next_cursor": {"type": ["integer", "null"]}}}), **_errors(400, 401, 503)}}},
            "/v1/images/{image_id}": {
                "get": {"summary": "State, metadata and variant URLs of one of your images",
                        "parameters": [ID_PARAM], "responses": {"200": _json(image), **_errors(400, 401, 404, 503)}},
                "delete": {"summary": "Delete the image, its variants and cached copies",
                           "parameters": [ID_PARAM],
                           "responses": {"204": {"description": "Deleted"}, **_errors(400, 401, 404, 503)}}},
            "/v1/images/{image_id}/original": {"get": {
                "summary": "Download the untouched original, metadata included (owner only)",
                "parameters": [ID_PARAM],
                "responses": {"200": {"description": "The original bytes",
                                      "content": {"image/*": {"schema": {"type": "string", "format": "binary"}}}},
                              **_errors(400, 401, 404, 503)}}},
            "/v1/review": {"get": {
                "summary": "Held images waiting for review (reviewer key)",
                "parameters": [{"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200}}],
                "responses": {"200": _json({"type": "object", "properties": {"items": {"type": "array"}}}),
                              **_errors(400, 401, 403, 503)}}},
            "/v1/review/{image_id}": {"post": {
                "summary": "Approve or reject a held image (reviewer key)",
                "parameters": [ID_PARAM],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["action"],
                    "properties": {"action": {"enum": ["approve", "reject"]}}}}}},
                "responses": {"200": _json({"type": "object"}), **_errors(400, 401, 403, 404, 503)}}},
            "/v1/review/{image_id}/preview": {"get": {
                "summary": "A signed, non-public preview of a held image",
                "security": [],
                "parameters": [ID_PARAM] + [{"name": n, "in": "query", "required": True, "schema": {"type": "string"}}
                                            for n in ("k", "e", "s")],
                "responses": {"200": {"description": "WebP preview",
                                      "content": {"image/webp": {"schema": {"type": "string", "format": "binary"}}}},
                              **_errors(400, 403, 404, 503)}}},
            "/v1/config": {"get": {
                "summary": "Public facts for clients: upload limit, allowed sizes, whether URLs must be signed",
                "security": [],
                "responses": {"200": _json({"type": "object", "required": [
                    "max_bytes", "widths", "thumb_sizes", "signing_required", "accepted_types"], "properties": {
                    "max_bytes": {"type": "integer"}, "signing_required": {"type": "boolean"},
                    "widths": {"type": "array", "items": {"type": "integer"}},
                    "thumb_sizes": {"type": "array", "items": {"type": "integer"}},
                    "presets": {"type": "array", "items": {"type": "object", "properties": {
                        "name": {"type": "string"}, "mode": {"enum": ["width", "fit", "fill"]},
                        "width": {"type": "integer"}, "height": {"type": ["integer", "null"]},
                        "gravity": {"enum": ["centre", "smart", None]}, "digest": {"type": "string"}}}},
                    "accepted_types": {"type": "array", "items": {"type": "string"}}}})}}},
            "/v1/sign": {"post": {
                "summary": "Sign delivery paths (signed, expiring URLs)",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["paths"],
                    "properties": {"paths": {"type": "array", "items": {"type": "string"}, "maxItems": 1000},
                                   "expires_in": {"type": "integer", "minimum": 1, "maximum": 31536000}}}}}},
                "responses": {"200": _json({"type": "object", "properties": {
                    "urls": {"type": "array", "items": {"type": "string"}}}}), **_errors(400, 401, 503)}}},
        },
    }


class OpenApiResource:
    def __init__(self):
        self.document = spec()

    def on_get(self, req, resp) -> None:
        resp.media = self.document
