"""One valid record of each import format, for tests that mutate or surround it."""

GOOD_ENTRY = {
    "paper": {
        "id": "2401.10241",
        "title": "Good",
        "summary": "Fine.",
        "authors": [{"name": "A"}],
        "publishedAt": "2023-11-30T10:40:34Z",
        "upvotes": 1,
    },
    "title": "Good",
    "publishedAt": "2023-12-01T08:00:00Z",
}
GOOD_RECORD = {
    "id": "0704.0001",
    "title": "Good",
    "abstract": "Fine.",
    "versions": [{"version": "v1", "created": "Mon, 2 Apr 2007 19:18:42 GMT"}],
}
GOOD_DOCUMENT = {"_id": "1", "title": "Good", "text": "Fine."}
