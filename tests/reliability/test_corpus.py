"""Every case of the generated bad-input corpus behaves as a careful user wants: a clear
error naming the file / field / setting, or the data given (with a warning where kseg
changed or dropped something). No crash, no silent wrong load."""

import pytest
from reliability_corpus import all_cases, judge

CASES = all_cases()


def test_corpus_is_large_and_names_are_unique():
    names = [case.name for case in CASES]
    assert len(names) == len(set(names)) and len(names) >= 60
    assert {case.group for case in CASES} == {"image", "via", "coco", "folder", "config",
                                              "weights"}


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_case_behaves_as_intended(case, tmp_path):
    outcome, detail = judge(case, tmp_path)
    assert outcome == "intended", f"{case.name}: {outcome}: {detail}"
