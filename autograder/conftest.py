"""``pytest autograder``: the pytest plugin's one entry point.

Its hooks and fixtures live in ``autograder/plugin/``, one concern per module, listed here in the
order a grading run meets them. pytest finds hooks and fixtures by name in this module's namespace,
so importing them is registering them (a ``pytest_plugins`` list is refused in a conftest that is
not at the root of the run).

    options      the command-line options and their defaults
    grading      the run's state: the submission read, its worker started, the reference on demand
    collection   exactly the checks the registry's rule finds, in its order
    fixtures     ``sub`` and ``ref``, the two things a check asks for
    rerun        one fair second run for a check during which the worker died
    outcomes     each check's verdict and the message a student reads
    summary      the grade table at the end of the run
    results      results.json, the exit status, and the report written whatever failed
"""

from autograder.plugin.options import pytest_addoption  # noqa: F401
from autograder.plugin.grading import pytest_configure  # noqa: F401
from autograder.plugin.collection import pytest_collection_modifyitems, pytest_collectreport  # noqa: F401
from autograder.plugin.fixtures import ref, sub  # noqa: F401
from autograder.plugin.rerun import pytest_pyfunc_call  # noqa: F401
from autograder.plugin.outcomes import pytest_runtest_makereport  # noqa: F401
from autograder.plugin.summary import pytest_terminal_summary  # noqa: F401
from autograder.plugin.results import pytest_internalerror, pytest_sessionfinish  # noqa: F401
