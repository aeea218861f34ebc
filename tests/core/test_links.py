"""Links in an email, where they are written, and what a fetch says of them."""

from __future__ import annotations

from newsletter.core.links import Fetched, Site, external_links, link_problems, locate


def test_external_links_are_other_hosts_http_links_and_images_each_once():
    html = (
        '<a href="https://a.example/x?y=1&amp;z=2">a</a> <img src="http://img.example/p.png">'
        '<a href="https://news.example/u/token">ours</a> <a href="mailto:x@y.example">m</a>'
        '<a href="#top">t</a> <a href="https://a.example/x?y=1&z=2">again</a>'
    )
    assert external_links(html, "news.example") == [
        "https://a.example/x?y=1&z=2",
        "http://img.example/p.png",
    ]


def test_locate_finds_the_first_file_and_line_that_spell_a_link_out():
    sources = [
        ("content/a.md", "---\nid: a\n---\nSee [it](https://x.example/M%C3%BCller).\n"),
        ("templates/footer.mjml.j2", "x\nhttps://y.example/\n"),
    ]
    assert locate("https://x.example/M%C3%BCller", sources) == Site("content/a.md", 4)
    assert locate("https://y.example/", sources) == Site("templates/footer.mjml.j2", 2)
    assert locate("https://z.example/", sources) is None
    assert str(Site("content/a.md", 4)) == "content/a.md:4" and str(Site("b.md")) == "b.md"


def test_umlauts_written_plainly_are_found_from_the_encoded_link():
    sources = [("content/a.md", "[it](https://x.example/Müller)\n")]
    assert locate("https://x.example/M%C3%BCller", sources) == Site("content/a.md", 1)


def test_what_a_fetch_says():
    def said(**fetched):
        return [
            (p.severity, p.what) for p in link_problems(Fetched("https://a.example/x", **fetched))
        ]

    assert said(status=200, final_url="https://a.example/x") == []
    assert said(status=200, final_url="https://a.example/y") == []  # same host: fine
    assert said(status=404, final_url="https://a.example/x") == [
        ("error", "broken link https://a.example/x: it answers 404")
    ]
    assert said(error="could not connect") == [
        ("error", "broken link https://a.example/x: could not connect")
    ]
    assert said(status=200, final_url="https://b.example/") == [
        ("warning", "link https://a.example/x redirects to another host: https://b.example/")
    ]
    plain = list(link_problems(Fetched("http://a.example/", 200, "https://a.example/")))
    assert [(p.severity, p.what) for p in plain] == [
        ("warning", "plain http link http://a.example/")
    ]
