"""Private assets and signed playback (CONTRACT §4 "Access").

    guard.py      the per-request check of a signed URL's token (and failure throttling)
    client_ip.py  the client's address, through trusted proxies
    routes.py     POST /v1/assets/{id}/playback-url, PATCH /v1/assets/{id},
                  GET /v1/access/check (an edge's auth_request), GET /playback/{id}
                  (the player page's own endpoint), and the Cache-Control cap

Where a token travels in a URL and what it contains: signing/ (pure).
"""
