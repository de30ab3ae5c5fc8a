"""Downloads' file names: RFC 6266 ``filename*`` for any script, an ASCII ``filename`` beside it."""

from __future__ import annotations

import re
from urllib.parse import unquote

import bibtexparser
import pytest
import rispy
from fastapi.testclient import TestClient

from broadsheet.web.downloads import attachment
from web.test_community import sign_up
from web.test_library import IDS, new_collection, post, site  # noqa: F401 (fixture)

NAMES = ["Статьи", "論文", "Ⅽ"]


def file_names(response) -> tuple[str, str]:
    """The (ASCII ``filename``, decoded ``filename*``) of a download's Content-Disposition."""
    assert response.status_code == 200, response.text
    header = response.headers["content-disposition"]
    assert header.isascii() and header.startswith("attachment;")
    plain = re.search(r'filename="([^"]*)"', header)
    extended = re.search(r"filename\*=UTF-8''([^;\s]+)", header)
    assert plain and extended, header
    return plain.group(1), unquote(extended.group(1), errors="strict")


@pytest.mark.parametrize(
    ("name", "plain", "full"),
    [
        ("Статьи", "download.bib", "Статьи.bib"),
        ("論文 2024", "2024.bib", "論文_2024.bib"),
        ("Ⅽ", "C.bib", "Ⅽ.bib"),
        ('Zoë\'s "picks"', "Zoe_s__picks.bib", "Zoë_s__picks_.bib"),
        ("hep-th/9901001", "hep-th_9901001.bib", "hep-th_9901001.bib"),
    ],
)
def test_attachment_names(name: str, plain: str, full: str) -> None:
    header = attachment(name, "bib")
    assert header.isascii()
    assert f'filename="{plain}"' in header
    assert f"filename*=UTF-8''{full}" in unquote(header)


def test_every_download_answers_for_a_collection_named_in_any_script(site: TestClient) -> None:  # noqa: F811
    sign_up(site, "ada")
    for paper_id in IDS:
        post(site, f"/papers/{paper_id}/save", {"saved": "true"})
    for number, name in enumerate(NAMES):
        collection = new_collection(site, name, "link")
        post(site, f"/papers/{IDS[number]}/collections", {"collection": [collection]})
        page = site.get(f"/library?collection={collection}").text
        shared = re.search(r'href="(/c/[A-Za-z0-9_-]+)"', page).group(1)
        for kind in ("bib", "ris"):
            mine = site.get(f"/library.{kind}?collection={collection}")
            assert file_names(mine)[1] == f"library-{name}.{kind}"
            anyone = site.get(f"{shared}.{kind}")
            assert file_names(anyone)[1] == f"{name}.{kind}"
        assert bibtexparser.parse_string(site.get(f"{shared}.bib").text).entries
        assert rispy.loads(site.get(f"{shared}.ris").text)
    assert file_names(site.get("/library.bib"))[1] == "library.bib"
    assert file_names(site.get("/search.ris?q=graph"))[1] == "broadsheet-search.ris"
    assert file_names(site.get("/papers/hep-th/9901001.bib")) == ("hep-th_9901001.bib",) * 2
    assert file_names(site.get("/settings/export"))[1] == "broadsheet-ada.json"
