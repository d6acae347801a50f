from __future__ import annotations

from typing import Any

import pytest

from inferq.aws import validate
from inferq.aws.errors import ValidationError, ValidationException
from inferq.aws.javaregex import UnsupportedPattern, java_regex
from inferq.aws.jsonproto import SerializationException

ASYNC = validate.INPUTS["runtime"]["InvokeEndpointAsync"]
VALID_ASYNC = {"EndpointName": "my-endpoint", "InputLocation": "s3://bucket/in.json"}


def async_violations(**members: Any) -> list[str]:
    return ASYNC.violations({**VALID_ASYNC, **members})


def constraint(value: str | None, path: str, text: str) -> str:
    shown = "Value null" if value is None else f"Value '{value}'"
    return f"{shown} at '{path}' failed to satisfy constraint: {text}"


# --- InvokeEndpointAsync headers (the spec's constraint table) -----------------------------


def test_a_valid_request_has_no_violations() -> None:
    full = {
        **VALID_ASYNC,
        "ContentType": "application/json",
        "Accept": "*/*",
        "CustomAttributes": "trace=1",
        "InferenceId": "job-1 (retry)",
        "S3OutputPathExtension": "runs/2024",
        "Filename": "result.json",
        "RequestTTLSeconds": 60,
        "InvocationTimeoutSeconds": 3600,
        "Body": b"x" * 128_000,
    }
    assert ASYNC.violations(full) == []


def test_missing_endpoint_name_is_null() -> None:
    assert ASYNC.violations({}) == [
        constraint(None, "endpointName", "Member must not be null"),
    ]


@pytest.mark.parametrize("inference_id", ["a", "x" * 64, "id with spaces", "A~!@#$%^&*()"])
def test_inference_id_accepted(inference_id: str) -> None:
    assert async_violations(InferenceId=inference_id) == []


def test_inference_id_too_long() -> None:
    assert async_violations(InferenceId="x" * 65) == [
        constraint("x" * 65, "inferenceId", "Member must have length less than or equal to 64"),
    ]


def test_empty_inference_id_breaks_length_and_pattern() -> None:
    assert async_violations(InferenceId="") == [
        constraint("", "inferenceId", "Member must have length greater than or equal to 1"),
        constraint(
            "", "inferenceId", r"Member must satisfy regular expression pattern: \A\S[\p{Print}]*\z"
        ),
    ]


@pytest.mark.parametrize("inference_id", [" leading", "\tx", "tab\tinside", "new\nline", "id-é"])
def test_inference_id_pattern(inference_id: str) -> None:
    found = async_violations(InferenceId=inference_id)
    assert len(found) == 1
    assert "at 'inferenceId' failed to satisfy constraint: Member must satisfy regular" in found[0]


@pytest.mark.parametrize("filename", ["a", "result.json", "x" * 32, "a-b_c.d", "0.out"])
def test_filename_accepted(filename: str) -> None:
    assert async_violations(Filename=filename) == []


@pytest.mark.parametrize("filename", ["a.b.c", ".hidden", "-dash", "sub/dir", "x" * 33])
def test_filename_rejected(filename: str) -> None:
    assert [v.split(" at ")[1].split("'")[1] for v in async_violations(Filename=filename)] == [
        "filename"
    ]


def test_filename_with_two_dots_names_the_pattern() -> None:
    pattern = r"^(?!.*\..*\.)[a-zA-Z0-9][a-zA-Z0-9-_\.]*$"
    assert async_violations(Filename="a.tar.gz") == [
        constraint(
            "a.tar.gz", "filename", f"Member must satisfy regular expression pattern: {pattern}"
        ),
    ]


@pytest.mark.parametrize("extension", ["s3://bucket/x", "https://host/x", "s3:x", "a b", ""])
def test_s3_output_path_extension_rejected(extension: str) -> None:
    found = async_violations(S3OutputPathExtension=extension)
    assert found and all("'s3OutputPathExtension'" in v for v in found)


@pytest.mark.parametrize("extension", ["runs/2024", "a!b_c.d*e'(f)/g-h", "s3", "https"])
def test_s3_output_path_extension_accepted(extension: str) -> None:
    assert async_violations(S3OutputPathExtension=extension) == []


@pytest.mark.parametrize("location", ["s3://b", "s3://b/", "s3://b/k/ey.json", "https://h/p?q=1"])
def test_input_location_accepted(location: str) -> None:
    assert async_violations(InputLocation=location) == []


@pytest.mark.parametrize("location", ["ftp://b/k", "s3:/b/k", "s3://", "bucket/key", "s3://b/k\n"])
def test_input_location_must_match_whole_value(location: str) -> None:
    assert async_violations(InputLocation=location) == [
        constraint(
            location,
            "inputLocation",
            "Member must satisfy regular expression pattern: ^(https|s3)://([^/]+)/?(.*)$",
        ),
    ]


@pytest.mark.parametrize(
    ("member", "path", "value", "text"),
    [
        ("RequestTTLSeconds", "requestTTLSeconds", 59, "greater than or equal to 60"),
        ("RequestTTLSeconds", "requestTTLSeconds", 21601, "less than or equal to 21600"),
        ("InvocationTimeoutSeconds", "invocationTimeoutSeconds", 0, "greater than or equal to 1"),
        (
            "InvocationTimeoutSeconds",
            "invocationTimeoutSeconds",
            3601,
            "less than or equal to 3600",
        ),
    ],
)
def test_integer_ranges(member: str, path: str, value: int, text: str) -> None:
    assert async_violations(**{member: value}) == [
        constraint(str(value), path, f"Member must have value {text}"),
    ]


@pytest.mark.parametrize(("ttl", "timeout"), [(60, 1), (21600, 3600), (900, 900)])
def test_integer_bounds_are_inclusive(ttl: int, timeout: int) -> None:
    assert async_violations(RequestTTLSeconds=ttl, InvocationTimeoutSeconds=timeout) == []


def test_content_type_must_be_ascii_and_at_most_1024() -> None:
    assert async_violations(ContentType="a" * 1024) == []
    assert async_violations(ContentType="text/plain; charset=ü") == [
        constraint(
            "text/plain; charset=ü",
            "contentType",
            r"Member must satisfy regular expression pattern: \p{ASCII}*",
        ),
    ]
    assert async_violations(ContentType="a" * 1025) == [
        constraint("a" * 1025, "contentType", "Member must have length less than or equal to 1024"),
    ]


def test_sensitive_values_are_not_echoed() -> None:
    assert async_violations(CustomAttributes="sécret") == [
        r"Value at 'customAttributes' failed to satisfy constraint: Member must satisfy "
        r"regular expression pattern: \p{ASCII}*"
    ]
    assert async_violations(Body=b"x" * 128_001) == [
        "Value at 'body' failed to satisfy constraint: Member must have length less than or "
        "equal to 128000"
    ]


# --- messages and errors -------------------------------------------------------------------


def test_one_violation_message() -> None:
    with pytest.raises(ValidationError) as raised:
        validate.validate_input(
            "runtime",
            "InvokeEndpointAsync",
            {**VALID_ASYNC, "RequestTTLSeconds": 10},
            ValidationError,
        )
    assert raised.value.message == (
        "1 validation error detected: Value '10' at 'requestTTLSeconds' failed to satisfy "
        "constraint: Member must have value greater than or equal to 60"
    )


def test_every_violation_is_collected_into_one_message() -> None:
    with pytest.raises(ValidationError) as raised:
        validate.validate_input(
            "runtime",
            "InvokeEndpointAsync",
            {"EndpointName": "bad_name", "RequestTTLSeconds": 10, "Filename": "a.b.c"},
            ValidationError,
        )
    message = raised.value.message
    assert message.startswith("3 validation errors detected: Value 'bad_name' at 'endpointName'")
    assert message.count("; ") == 2
    assert "Value '10' at 'requestTTLSeconds'" in message
    assert "Value 'a.b.c' at 'filename'" in message


def test_wrong_types_raise_the_type_error_class() -> None:
    with pytest.raises(SerializationException, match="Expected string at 'modelName'"):
        validate.validate_input(
            "control",
            "DescribeModel",
            {"ModelName": 5},
            ValidationException,
            SerializationException,
        )
    with pytest.raises(ValidationException, match="Expected integer at 'maxResults'"):
        validate.validate_input("control", "ListModels", {"MaxResults": "5"}, ValidationException)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"MaxResults": True}, "integer"),
        ({"NameContains": ["x"]}, "string"),
        ({"CreationTimeAfter": "yesterday"}, "timestamp"),
    ],
)
def test_type_checks(params: dict[str, Any], expected: str) -> None:
    found = validate.INPUTS["control"]["ListModels"].violations(params)
    assert len(found) == 1 and found[0].startswith(f"Expected {expected} at ")


def test_unknown_members_and_nulls_are_ignored() -> None:
    assert ASYNC.violations({**VALID_ASYNC, "Surprise": 1, "Filename": None}) == []


# --- control-plane shapes ------------------------------------------------------------------

CREATE_CONFIG = validate.INPUTS["control"]["CreateEndpointConfig"]


def config(**extra: Any) -> dict[str, Any]:
    return {
        "EndpointConfigName": "cfg",
        "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": "m"}],
        **extra,
    }


def test_nested_paths_use_one_based_member_indexes() -> None:
    request = config(
        ProductionVariants=[
            {"VariantName": "ok", "ModelName": "m"},
            {"VariantName": "bad_name", "InitialInstanceCount": 0},
        ]
    )
    assert CREATE_CONFIG.violations(request) == [
        constraint(
            "bad_name",
            "productionVariants.2.member.variantName",
            "Member must satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}",
        ),
        constraint(
            "0",
            "productionVariants.2.member.initialInstanceCount",
            "Member must have value greater than or equal to 1",
        ),
    ]


def test_list_lengths() -> None:
    assert CREATE_CONFIG.violations(config(ProductionVariants=[])) == [
        constraint(
            "[]", "productionVariants", "Member must have length greater than or equal to 1"
        ),
    ]
    variants = [{"VariantName": f"v{i}"} for i in range(11)]
    found = CREATE_CONFIG.violations(config(ProductionVariants=variants))
    assert found[0].endswith("Member must have length less than or equal to 10")


def test_async_inference_config_constraints() -> None:
    request = config(
        AsyncInferenceConfig={
            "OutputConfig": {
                "S3OutputPath": "file:///tmp",
                "NotificationConfig": {
                    "SuccessTopic": "arn:aws:sns:us-east-1:123:t",
                    "IncludeInferenceResponseIn": ["BOTH"],
                },
            },
            "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 1001},
        }
    )
    paths = [v.split(" at '")[1].split("'")[0] for v in CREATE_CONFIG.violations(request)]
    assert paths == [
        "asyncInferenceConfig.outputConfig.s3OutputPath",
        "asyncInferenceConfig.outputConfig.notificationConfig.successTopic",
        "asyncInferenceConfig.outputConfig.notificationConfig.includeInferenceResponseIn.1.member",
        "asyncInferenceConfig.clientConfig.maxConcurrentInvocationsPerInstance",
    ]


def test_async_inference_config_requires_output_config() -> None:
    assert CREATE_CONFIG.violations(config(AsyncInferenceConfig={})) == [
        constraint(None, "asyncInferenceConfig.outputConfig", "Member must not be null"),
    ]


def test_enum_message_lists_the_values() -> None:
    found = validate.INPUTS["control"]["ListEndpoints"].violations({"SortBy": "Size"})
    assert found == [
        constraint(
            "Size", "sortBy", "Member must satisfy enum value set: [Name, CreationTime, Status]"
        ),
    ]


def test_float_minimum() -> None:
    request = config(ProductionVariants=[{"VariantName": "v", "InitialVariantWeight": -0.5}])
    assert CREATE_CONFIG.violations(request) == [
        constraint(
            "-0.5",
            "productionVariants.1.member.initialVariantWeight",
            "Member must have value greater than or equal to 0",
        ),
    ]


def test_map_keys_values_and_size() -> None:
    create_model = validate.INPUTS["control"]["CreateModel"]
    env = {"GOOD": "x", "1BAD": "y", "SECRET": "s" * 1025}
    found = create_model.violations({"ModelName": "m", "PrimaryContainer": {"Environment": env}})
    assert found == [
        constraint(
            "1BAD",
            "primaryContainer.environment",
            "Member must satisfy regular expression pattern: [a-zA-Z_][a-zA-Z0-9_]*",
        ),
        "Value at 'primaryContainer.environment.SECRET' failed to satisfy constraint: Member must "
        "have length less than or equal to 1024",
    ]
    big = {f"K{i}": "v" for i in range(101)}
    found = create_model.violations({"ModelName": "m", "PrimaryContainer": {"Environment": big}})
    assert len(found) == 1 and found[0].endswith("less than or equal to 100")


def test_boolean_type() -> None:
    found = validate.INPUTS["control"]["CreateModel"].violations(
        {"ModelName": "m", "EnableNetworkIsolation": "yes"}
    )
    assert found == ["Expected boolean at 'enableNetworkIsolation' but found str."]


def test_tags_allow_unicode_letters() -> None:
    create_model = validate.INPUTS["control"]["CreateModel"]
    tags = [{"Key": "équipe", "Value": "数据 科学 2"}]
    assert create_model.violations({"ModelName": "m", "Tags": tags}) == []
    bad = [{"Key": "a|b", "Value": "ok"}]
    assert len(create_model.violations({"ModelName": "m", "Tags": bad})) == 1


# --- Java regex translation ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "matching", "not_matching"),
    [
        (r"\A\S[\p{Print}]*\z", ["a b~"], ["", " a", "a\n", "a\tb"]),
        (r"\p{ASCII}*", ["", "\x00\x7f"], ["\x80"]),
        (r"\p{Graph}+", ["a!"], ["a b"]),
        (r"a++b", ["aab"], ["b"]),
        (r"(?<word>a)\k<word>", [], []),
        (r"\Qa.b\E", ["a.b"], ["axb"]),
        (r"(?<first>x)y", ["xy"], ["x"]),
        (r".*", ["anything"], ["line\rbreak", "a\u2028b"]),
        (r"\d\w\s", ["1a "], ["\u0661a ", "1é "]),
        (r"[\S\s]*", ["a\nb"], []),
        (r"[^/]+", ["ab"], ["a/b"]),
        (r"[\p{L}\p{N}]+", ["aé数٣"], ["_", "a b"]),
        (r"\x41\u0042\0103", ["ABC"], []),
        (r"a$", ["a"], ["a\n"]),
    ],
)
def test_java_regex_full_match(pattern: str, matching: list[str], not_matching: list[str]) -> None:
    if "\\k" in pattern:
        with pytest.raises(UnsupportedPattern):
            java_regex(pattern)
        return
    compiled = java_regex(pattern)
    assert all(compiled.fullmatch(v) for v in matching), pattern
    assert not any(compiled.fullmatch(v) for v in not_matching), pattern


@pytest.mark.parametrize("pattern", [r"[a-z&&[^aeiou]]", r"[a[b]]", r"[^\p{L}]", r"\R", r"[abc"])
def test_untranslatable_patterns_fail_loudly(pattern: str) -> None:
    with pytest.raises(UnsupportedPattern):
        java_regex(pattern)


def test_compile_any_shape() -> None:
    from inferq.aws._shapes import control

    checker = validate.compile_shape(control.SHAPES, "Tag")
    assert checker.violations({"Key": "k"}) == [
        constraint(None, "value", "Member must not be null")
    ]


def test_a_leading_non_ascii_character_is_not_whitespace() -> None:
    # Java's \S is "not [ \t\n\x0B\f\r]", so only what follows the first character must print
    assert async_violations(InferenceId="é-id") == []
