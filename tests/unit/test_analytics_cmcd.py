"""CMCD parsing (CTA-5004 v1 request data, CTA-5004-A v2 event reports): strict and safe."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from analytics import cmcd


def test_v1_query_value() -> None:
    got = cmcd.parse('br=3200,bs,d=4004,mtp=25400,ot=v,rtp=15000,sid="6e2fb550-c457-11e9-bb97",'
                     'tb=6000,su,cid="faec5fc2-ac30-11eabb37-0242ac130002",sf=h,st=v,nor="..%2Fseg_2.m4s"')
    assert got == {"br": 3200, "bs": True, "d": 4004, "mtp": 25400, "ot": "v", "rtp": 15000,
                   "sid": "6e2fb550-c457-11e9-bb97", "tb": 6000, "su": True,
                   "cid": "faec5fc2-ac30-11eabb37-0242ac130002", "sf": "h", "st": "v",
                   "nor": "..%2Fseg_2.m4s"}


def test_still_url_encoded_and_from_query() -> None:
    raw = "CMCD=br%3D64%2Csid%3D%22a%2Cb%22%2Cbs&token=x"
    value = cmcd.from_query(raw)
    assert value == 'br=64,sid="a,b",bs'
    assert cmcd.parse(value) == {"br": 64, "sid": "a,b", "bs": True}
    assert cmcd.parse("br%3D64%2Cbs") == {"br": 64, "bs": True}
    assert cmcd.from_query("a=1&b=2") is None


def test_headers_joined() -> None:
    headers = {"CMCD-Request": "bl=21300,mtp=25400", "CMCD-Object": "br=3200,d=4004,ot=v",
               "CMCD-Session": 'sid="s1",sf=d,st=v', "Other": "x"}
    joined = cmcd.from_headers(headers)
    assert joined == 'bl=21300,mtp=25400,br=3200,d=4004,ot=v,sid="s1",sf=d,st=v'
    assert cmcd.parse(joined)["bl"] == 21300  # type: ignore[index]
    assert cmcd.from_headers({}) is None


def test_v2_event_report() -> None:
    got = cmcd.parse('e=ps,sta=p,ts=1796205600123,sid="abc",cid="ep1",br=(3200 128),'
                     'bl=(5000 6000),mtp=(25400),v=2,pt=12000')
    assert got == {"e": "ps", "sta": "p", "ts": 1796205600123, "sid": "abc", "cid": "ep1",
                   "br": 3200, "bl": 5000, "mtp": 25400, "v": 2, "pt": 12000}
    assert cmcd.parse("sta=r,e=ps") == {"sta": "r", "e": "ps"}


def test_bad_values_are_ignored_key_by_key() -> None:
    got = cmcd.parse('br=abc,bl=-5,ot=zz,sta=x,sid=unquoted,cid="ok",su=?0,bs=?1,'
                     'Upper=1,pr=1.25,d=1.5,nor="a\\"b",custom-key=3,br=7')
    assert got == {"cid": "ok", "su": False, "bs": True, "pr": 1.25, "nor": 'a"b', "br": 7}


def test_limits_and_garbage() -> None:
    assert cmcd.parse(None) is None
    assert cmcd.parse("") is None
    assert cmcd.parse('sid="open') is None
    assert cmcd.parse("," * 10) is None
    assert cmcd.parse("br=1," * 2000) is None  # too long
    assert cmcd.parse(",".join(f"k{i}=1" for i in range(100))) is None  # too many keys
    assert cmcd.parse('sid="' + "x" * 200 + '"') is None  # string too long
    assert cmcd.parse("ts=99999999999999999999") is None
    assert cmcd.parse('sid="caf\u00e9"') is None  # strings are printable ASCII


@given(st.text(max_size=300))
def test_never_raises(text: str) -> None:
    got = cmcd.parse(text)
    assert got is None or isinstance(got, dict)


def test_report_lines() -> None:
    body = "e=ps,sta=s\r\n\r\ne=ps,sta=p\n" + "e=t\n" * 500
    lines = cmcd.report_lines(body)
    assert lines[:2] == ["e=ps,sta=s", "e=ps,sta=p"]
    assert len(lines) == cmcd.MAX_REPORTS


def test_play_state_and_its_draft_form() -> None:
    assert cmcd.state_of(cmcd.parse("e=ps,sta=r") or {}) == "r"
    assert cmcd.state_of(cmcd.parse("e=p") or {}) == "p"  # dash.js 5.0's draft form
    assert cmcd.state_of(cmcd.parse("e=e") or {}) is None  # an error event, not "ended"
    assert cmcd.state_of(cmcd.parse("e=t,br=64") or {}) is None
