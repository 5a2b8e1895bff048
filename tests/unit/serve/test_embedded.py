"""Reading why tritonserver did not start from its log (serve.embedded.load_failures, startup_errors), on
lines as tritonserver 2.5x writes them."""

from __future__ import annotations

from repo_builder.serve.embedded import load_failures, startup_errors

#: a python model whose initialize raised (the failed-to-load line, then the model status table)
FAILED_LOAD = r"""I1202 07:06:11.770001 16705 pinned_memory_manager.cc:277] "Pinned memory pool is created"
E1202 07:06:11.776261 16705 server.cc:241] "CudaDriverHelper has not been initialized."
I1202 07:06:12.100000 16705 model_lifecycle.cc:473] "loading: broken:1"
E1202 07:06:13.649453 16705 model_lifecycle.cc:642] "failed to load 'broken' version 1: Internal: ValueError: weights file missing\n\nAt:\n  /tmp/repo-builder-serve-x/repository/broken/1/model.py(3): initialize\n"
I1202 07:06:13.649471 16705 model_lifecycle.cc:777] "failed to load 'broken'"
+--------+---------+--------------------------------------------------------+
| Model  | Version | Status                                                 |
+--------+---------+--------------------------------------------------------+
| broken | 1       | UNAVAILABLE: Internal: ValueError: weights file missing |
| good   | 1       | READY                                                  |
+--------+---------+--------------------------------------------------------+

+----------------------------------+------------------------------------------+
| Option                           | Value                                    |
+----------------------------------+------------------------------------------+
| exit_timeout                     | 13                                       |
+----------------------------------+------------------------------------------+
error: creating server: Internal - failed to load all models
"""  # noqa: E501 - Triton's lines as it writes them

#: a config Triton refuses while polling the repository: no status row, only this line
POLL_FAILED = r"""E1202 07:05:55.113253 16272 model_repository_manager.cc:1460] "Poll failed for model directory 'bad': model input 'x' dimension must be integer >= 1, or -1 to indicate a variable-size dimension for bad"
error: creating server: Internal - failed to load all models
"""  # noqa: E501


def test_a_model_that_failed_to_load_with_its_reason_and_where_it_raised() -> None:
    assert load_failures(FAILED_LOAD) == {
        "broken": "broken version 1: Internal: ValueError: weights file missing "
        "(at /tmp/repo-builder-serve-x/repository/broken/1/model.py(3): initialize)"
    }


def test_a_config_refused_while_polling() -> None:
    assert load_failures(POLL_FAILED) == {
        "bad": "bad: model input 'x' dimension must be integer >= 1, or -1 to indicate a variable-size "
        "dimension for bad"
    }


def test_a_status_row_alone_names_the_model() -> None:
    row = "| lonely | 2       | UNAVAILABLE: Not found: unable to load shared library |\n"
    assert load_failures(row) == {"lonely": "lonely version 2: UNAVAILABLE: Not found: unable to load shared library"}


def test_error_lines_are_the_messages_of_severity_e_and_the_final_error() -> None:
    assert startup_errors(POLL_FAILED) == [
        "Poll failed for model directory 'bad': model input 'x' dimension must be integer >= 1, or -1 to "
        "indicate a variable-size dimension for bad",
        "error: creating server: Internal - failed to load all models",
    ]
    assert load_failures("| Option | Value |\n| exit_timeout | 13 |\n") == {}
