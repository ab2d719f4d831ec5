"""README.zh-CN.md: the Chinese README covers the English one section by section, links both ways,
keeps the data numbers and citations identical, and carries a bilingual glossary."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EN = ROOT / "README.md"
ZH = ROOT / "README.zh-CN.md"
CJK = re.compile(r"[\u4e00-\u9fff]")


def _sections(text: str) -> dict:
    """``{heading: body}`` of the ``## `` sections."""
    parts = re.split(r"^## (.+)$", text, flags=re.M)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts) - 1, 2)}


@pytest.fixture(scope="module")
def en() -> str:
    return EN.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def zh() -> str:
    assert ZH.is_file(), "README.zh-CN.md is missing"
    return ZH.read_text(encoding="utf-8")


def test_links_both_ways(en, zh):
    assert "](README.zh-CN.md)" in "\n".join(en.splitlines()[:5]), "README.md links the Chinese README at the top"
    assert "](README.md)" in "\n".join(zh.splitlines()[:5]), "README.zh-CN.md links back to README.md at the top"


def test_every_english_section_has_a_chinese_one(en, zh):
    """Each Chinese heading names its English section in brackets: ``## 可复现性（Reproducibility）``."""
    zh_sections = _sections(zh)
    named = {}
    for heading in zh_sections:
        match = re.search(r"[（(]([^）)]+)[）)]\s*$", heading)
        if match:
            named[match.group(1)] = heading
    missing = [h for h in _sections(en) if h not in named]
    assert not missing, f"README.zh-CN.md lacks a section for {missing}: add '## <中文标题>（<English title>）'"
    for english, heading in named.items():
        assert CJK.search(heading), f"{heading!r} has no Chinese title"
        assert len(CJK.findall(zh_sections[heading])) >= 10 or english in ("Glossary",), (
            f"{heading!r} is not translated")


def test_data_numbers_are_the_english_ones(en, zh):
    """The cleaning and protocol tables carry the same numbers in both languages."""
    def numbers(body):
        return sorted(re.findall(r"\d[\d,]*(?:\.\d+)?", body))

    en_body = _sections(en)["The data and the protocol, in numbers"]
    zh_body = next(b for h, b in _sections(zh).items() if h.endswith("（The data and the protocol, in numbers）"))
    assert numbers(zh_body) == numbers(en_body)


def test_bad_input_section_links_the_cases(zh):
    body = next(b for h, b in _sections(zh).items() if h.endswith("（When the input is bad）"))
    assert "](docs/bad-input.md)" in body, "README.zh-CN.md links docs/bad-input.md, as README.md does"


def test_citations_match(en, zh):
    for cite in ("10.24432/C5BW33", "CC BY 4.0", "Apache-2.0", "2206.05941", "2210.12316", "2402.18166"):
        assert cite in en and cite in zh, cite


def test_configuration_lists_the_same_variables(en, zh):
    def variables(text, title):
        body = next(b for h, b in _sections(text).items() if h == title or h.endswith(f"（{title}）"))
        return set(re.findall(r"`([A-Z][A-Z0-9_]+)`", body))

    assert variables(zh, "Configuration") == variables(en, "Configuration")
    assert {"COLDSTART_COURSE_REPO", "COLDSTART_COURSE_DIR"} <= variables(en, "Configuration")


def test_glossary(zh):
    body = next(b for h, b in _sections(zh).items() if h.endswith("（Glossary）"))
    rows = [line for line in body.splitlines() if line.startswith("| ") and not line.startswith("| English")]
    pairs = [tuple(cell.strip() for cell in row.strip("|").split("|")) for row in rows]
    assert len(pairs) >= 40
    assert all(len(p) == 2 and p[0] and CJK.search(p[1]) and not CJK.search(p[0]) for p in pairs), pairs
    english = [p[0] for p in pairs]
    assert len(set(english)) == len(english), "a term is listed twice"
    table = dict(pairs)
    for term, chinese in [("cold start", "冷启动"), ("fine-tuning", "微调"), ("adapter", "适配器"),
                          ("data augmentation", "数据增强")]:
        assert chinese in table[term]
