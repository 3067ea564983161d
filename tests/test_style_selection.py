"""pipeline.style_selection: --style selection (one style, several, errors)."""
import pytest

from pipeline.style_selection import style_indices

NAMES = ["la_muse.jpg", "mondrian.jpg", "sketch.png"]


def test_all_styles_when_none_given():
    assert style_indices(None, NAMES, "style/") == [0, 1, 2]


@pytest.mark.parametrize("spec, expected", [("1", [1]), ("sketch", [2]), ("sketch.png", [2]),
                                            ("sketch,0", [2, 0]), (" mondrian , la_muse.jpg ", [1, 0]),
                                            ("2,sketch", [2])])
def test_names_indices_and_lists(spec, expected):
    assert style_indices(spec, NAMES, "style/") == expected


@pytest.mark.parametrize("spec, message", [("3", "--style 3 is out of range: style/ has 3 styles"),
                                           ("la_muse,picasso", "--style 'picasso' is not in style/"),
                                           ("", "--style '' is not in style/")])
def test_bad_styles_name_the_option_and_the_folder(spec, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        style_indices(spec, NAMES, "style/")
