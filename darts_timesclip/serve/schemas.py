"""The request and response models of the service, built for one loaded model so that the schema states its rules.

The models parse leniently (types only) and :class:`~darts_timesclip.serve.service.ForecastService` checks the
values, so that refusals name the row and column and say why; the JSON schema each model publishes states those
checks as JSON Schema rules (lengths, ranges, component names, the model's limits). What no JSON schema can state
(most rules relate several fields) is listed in words under ``x-rules-in-words``, with the ``type`` of its refusal.
"""

from __future__ import annotations

from typing import Annotated, Any

from darts_timesclip.serve.service import FREQ_PATTERN, RULES_IN_WORDS, ForecastService

MAX_INDEX = 2**53  # integers of a time index, and steps, stay exact in JSON numbers and in int64


def request_models(service: ForecastService) -> tuple[type, type]:
    """``(ForecastRequest, ForecastResponse)`` pydantic models whose JSON schemas state the service's rules."""
    from pydantic import BaseModel, ConfigDict, Field, create_model

    limits = service.limits
    icl, ocl = service.input_chunk_length, service.output_chunk_length
    bound = limits.max_abs_value
    number = {"type": "number", "minimum": -bound, "maximum": bound}
    integer = {"type": "integer", "minimum": -MAX_INDEX, "maximum": MAX_INDEX}
    timestamp = {"type": "string", "format": "date-time"}

    def values_schema(width: int, what: str) -> dict[str, Any]:
        rows = {
            "type": "array",
            "minItems": icl,
            "maxItems": limits.max_rows,
            "items": {"type": "array", "minItems": width, "maxItems": width, "items": number},
        }
        schema: dict[str, Any] = {
            "description": f"rows (time, oldest first) x {width} {what}; at least `input_chunk_length` = {icl} rows, "
            f"at most {limits.max_rows}; finite numbers with |value| <= {bound:g}"
            + (" (one component: a flat list is taken as one column)" if width == 1 else ""),
        }
        if width == 1:
            schema["anyOf"] = [rows, {**rows, "items": number}]
        else:
            schema.update(rows)
        return schema

    def names_schema(names: list[str] | None, width: int) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "array", "items": {"type": "string"}, "minItems": width, "maxItems": width}
        if names:
            schema = {"type": "array", "items": {"type": "string", "enum": list(names)}, "const": list(names)}
        described = "column names; they must be those the model was trained on (default: those)"
        return {"anyOf": [schema, {"type": "null"}], "default": None, "description": described}

    index_schema = {
        "anyOf": [
            {"type": "array", "items": timestamp, "minItems": icl, "maxItems": limits.max_rows},
            {"type": "array", "items": integer, "minItems": icl, "maxItems": limits.max_rows},
            {"type": "null"},
        ],
        "default": None,
        "description": "a time stamp per row of `values` (regular), or integers at a constant step",
    }
    start_schema = {
        "anyOf": [timestamp, integer, {"type": "null"}],
        "default": None,
        "description": "first time stamp (with a pandas `freq`) or first integer (with an integer `freq`)",
    }
    freq_schema = {
        "anyOf": [{"type": "string", "pattern": FREQ_PATTERN}, {"type": "integer", "minimum": 1, "maximum": 2**31},
                  {"type": "null"}],
        "default": None,
        "description": "pandas frequency (`h`, `15min`, `D`, `W-SUN`, `MS`, ...) or an integer step",
    }  # fmt: skip

    def payload_model(name: str, width: int, names: list[str] | None, what: str) -> type:
        def schema(s: dict[str, Any]) -> None:
            s["properties"] = {
                "values": values_schema(width, what),
                "components": names_schema(names, width),
                "time_index": index_schema,
                "start": start_schema,
                "freq": freq_schema,
            }

        return create_model(
            name,
            __config__=ConfigDict(extra="forbid", json_schema_extra=schema),
            values=(list[list[float]] | list[float], ...),
            components=(list[str] | None, None),
            time_index=(list[str] | list[int] | None, None),
            start=(str | int | None, None),
            freq=(str | int | None, None),
        )

    SeriesPayload = payload_model("SeriesPayload", service.n_targets, service.model.target_components,
                                  "target components")  # fmt: skip
    CovariatesPayload = (
        payload_model(
            "PastCovariatesPayload",
            service.n_covariates,
            service.model.past_covariate_components,
            "past covariate components",
        )  # fmt: skip
        if service.n_covariates
        else None
    )
    probabilistic = service.probabilistic

    def request_schema(s: dict[str, Any]) -> None:
        props = s["properties"]
        props["n"] = {"type": "integer", "minimum": 1, "maximum": limits.max_n,
                      "description": f"forecast horizon in time steps (at most {limits.max_n}); beyond "
                      f"`output_chunk_length` = {ocl} the forecast is auto-regressive"}  # fmt: skip
        if probabilistic:
            props["num_samples"] = {
                "anyOf": [{"type": "integer", "minimum": 1, "maximum": limits.max_num_samples}, {"type": "null"}],
                "default": None,
                "description": f"samples drawn (default {limits.default_num_samples})",
            }
            props["quantiles"] = {
                "anyOf": [
                    {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": limits.max_quantiles,
                        "items": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
                    },
                    {"type": "null"},
                ],
                "default": None,
                "description": "levels answered besides the median (default 0.1, 0.5, 0.9)",
            }
            props["seed"] = {
                "anyOf": [{"type": "integer", "minimum": 0, "maximum": 2**32 - 1}, {"type": "null"}],
                "default": None,
                "description": "seed of the samples (default: a fresh one, answered)",
            }
        else:  # a deterministic model: one sample, no levels, no seed
            props["num_samples"] = {
                "anyOf": [{"type": "integer", "minimum": 1, "maximum": 1}, {"type": "null"}],
                "default": None,
                "description": "1 or omitted: the model is deterministic",
            }
            props["quantiles"] = {
                "anyOf": [{"type": "array", "maxItems": 0}, {"type": "null"}],
                "default": None,
                "description": "none: the model is deterministic",
            }
            props["seed"] = {
                "anyOf": [{"type": "integer", "minimum": 0, "maximum": 2**32 - 1}, {"type": "null"}],
                "default": None,
                "description": "ignored: the model is deterministic",
            }
        required = ["series", "n"]
        if CovariatesPayload is None:
            props.pop("past_covariates", None)
        else:
            props["past_covariates"] = {"$ref": "#/components/schemas/PastCovariatesPayload",
                                        "description": "past covariates over the window of `series` (and, for "
                                        "`n` > `output_chunk_length`, the steps after it)"}  # fmt: skip
            required.append("past_covariates")
        s["required"] = required
        s["x-rules-in-words"] = [{"type": kind, "rule": rule} for kind, rule in RULES_IN_WORDS.items()]  # fmt: skip

    covariates_type = Annotated[Any, Field(default=None)] if CovariatesPayload is None else CovariatesPayload | None

    class ForecastRequest(BaseModel):
        """What to forecast."""

        model_config = ConfigDict(extra="forbid", json_schema_extra=request_schema)
        series: SeriesPayload  # type: ignore[valid-type]
        past_covariates: covariates_type = None  # type: ignore[valid-type]
        n: int = Field(ge=1)
        num_samples: int | None = Field(default=None, ge=1)
        quantiles: list[float] | None = None
        seed: int | None = None

    class ForecastResponse(BaseModel):
        """A forecast: for a probabilistic model, ``values`` is the median of the samples."""

        time_index: list[str] | list[int] = Field(description="time of each forecast step")
        components: list[str]
        n: int
        values: list[list[float]] = Field(description="n rows x components (the median of the samples)")
        quantiles: dict[str, list[list[float]]] | None = Field(default=None, description="level -> n x components")
        num_samples: int | None = None
        seed: int | None = Field(default=None, description="the samples' seed: the same request with it, the same "
                                 "answer")  # fmt: skip

    return ForecastRequest, ForecastResponse


def error_model() -> type:
    """The body of every 4xx answer (FastAPI's own validation errors have the same form)."""
    from pydantic import BaseModel

    class ErrorItem(BaseModel):
        loc: list[str | int]
        msg: str
        type: str

    class ErrorResponse(BaseModel):
        detail: list[ErrorItem]

    return ErrorResponse
