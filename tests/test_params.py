import pytest

from spikeinterface_deepsort.errors import ParameterError
from spikeinterface_deepsort.params import SORTER_PARAMS


def test_defaults_validate_unchanged():
    assert SORTER_PARAMS.validate({}) == SORTER_PARAMS.defaults()


def test_every_param_is_described():
    descriptions = SORTER_PARAMS.descriptions()
    assert set(descriptions) == set(SORTER_PARAMS.defaults())
    assert all(len(text) > 10 for text in descriptions.values())


@pytest.mark.parametrize(
    "values, fragment",
    [
        ({"no_such_param": 1}, "Unknown parameter"),
        ({"detect_threshold": "high"}, "must be of type"),
        ({"detection_radius_um": -5.0}, "must be > 0"),
        ({"max_rounds": 0}, "must be >= 1"),
        ({"matching_method": "magic"}, "must be one of"),
        ({"apply_preprocessing": 1}, "must be of type bool"),
        ({"max_rounds": True}, "must be of type int"),
        ({"learning_rate": float("nan")}, "finite"),
    ],
)
def test_bad_values_are_refused_with_the_parameter_named(values, fragment):
    with pytest.raises(ParameterError, match=fragment) as error:
        SORTER_PARAMS.validate(values)
    assert list(values)[0] in str(error.value)


def test_int_is_accepted_where_float_expected():
    assert SORTER_PARAMS.validate({"detect_threshold": 6})["detect_threshold"] == 6.0


@pytest.mark.parametrize(
    "text, expected",
    [
        ("detect_threshold=5.5", ("detect_threshold", 5.5)),
        ("apply_preprocessing=false", ("apply_preprocessing", False)),
        ("matching_method=tdc-peeler", ("matching_method", "tdc-peeler")),
        ("seed=None", ("seed", None)),
        ("job_kwargs={'n_jobs': 2}", ("job_kwargs", {"n_jobs": 2})),
    ],
)
def test_command_line_assignments_are_typed(text, expected):
    assert SORTER_PARAMS.parse_assignment(text) == expected


@pytest.mark.parametrize("text", ["detect_threshold", "nope=3", "max_rounds=2.5"])
def test_bad_command_line_assignments(text):
    with pytest.raises(ParameterError):
        SORTER_PARAMS.parse_assignment(text)


def test_markdown_table_lists_every_parameter():
    table = SORTER_PARAMS.markdown_table()
    for name in SORTER_PARAMS.defaults():
        assert f"`{name}`" in table
