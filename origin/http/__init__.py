"""HTTP semantics of the origin, mostly pure: header names, Range, conditional requests,
Cache-Control by object class, CORS, representations (ETag, gzip), request heads for the
fast lane, the bounded object cache, Server-Sent Events."""
