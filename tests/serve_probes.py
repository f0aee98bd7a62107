"""Bad requests the server must answer with a clear 4xx and survive (used by test_serve.py).

Found by probing the server as a careless or hostile client would: bodies that are deeply nested,
oversized, of the wrong types or content type, or not UTF-8, and paths that differ from the API's
by a slash, a case or a method.
"""

from __future__ import annotations

JSON = {"Content-Type": "application/json"}
PROBES = [  # (what, body, headers, status)
    ("nested", b"[" * 100_000, JSON, 400),
    ("nested object", b'{"messages": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5001, JSON, 400),
    ("oversized", b'{"messages": [{"role": "user", "content": "' + b"a" * 1_000_000 + b'"}]}', JSON, 413),
    ("messages not a list", b'{"messages": {"role": "user", "content": "hi"}}', JSON, 400),
    ("content a number", b'{"messages": [{"role": "user", "content": 5}]}', JSON, 400),
    ("n a string", b'{"messages": [{"role": "user", "content": "hi"}], "n": "2"}', JSON, 400),
    ("body null", b"null", JSON, 400),
    ("form body", b"messages=hi", {"Content-Type": "application/x-www-form-urlencoded"}, 400),
    ("text body", b"hello", {"Content-Type": "text/plain"}, 400),
    ("invalid UTF-8", b'{"messages": [{"role": "user", "content": "\xff\xfe"}]}', JSON, 400),
]

PATH_VARIANTS = [  # (method, path): each gets a 401 without a key, never a redirect
    ("POST", "/v1/chat/completions/"),
    ("POST", "/v1/chat/completions//"),
    ("POST", "/v1//chat/completions"),
    ("POST", "/V1/chat/completions"),
    ("POST", "/v1/chat/completions/x"),
    ("GET", "/v1/chat/completions"),
    ("PUT", "/v1/chat/completions"),
    ("GET", "/v1/models/"),
    ("GET", "/v1/"),
    ("POST", "/v2/chat/completions"),
]
