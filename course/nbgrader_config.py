# nbgrader configuration of the gpt-lab course (nbgrader 0.9.6). Run nbgrader from this folder:
#
#     cd course && nbgrader generate_assignment gpt_lab     # -> release/gpt_lab/gpt_lab.ipynb
#     nbgrader autograde gpt_lab                             # grades submitted/<student>/gpt_lab/
#
# See docs/instructor.md. source/gpt_lab/gpt_lab.ipynb is a link to solutions/gpt_lab.ipynb (the one
# instructor source); `python -m instructor.course_init DIR` makes a course folder elsewhere.
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# The gpt-lab checkout: its autograder/ and data/ packages are imported by the notebook's check cells
# (the hidden checks read the reference solutions/gpt_lab.ipynb next to autograder/), and
# instructor/nbgrader_plugins.py holds the preprocessors below. course_init fills in _DEFAULT_ROOT.
_DEFAULT_ROOT = None
REPO = Path(os.environ.get("GPTLAB_ROOT") or _DEFAULT_ROOT or HERE.parent).resolve()
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
# the kernels nbgrader starts inherit this environment: they import autograder and data from REPO
_pp = os.environ.get("PYTHONPATH", "")
if str(REPO) not in _pp.split(os.pathsep):
    os.environ["PYTHONPATH"] = str(REPO) + (os.pathsep + _pp if _pp else "")
# creating gradebook.db runs `alembic` from PATH: the one next to this Python
_bin = str(Path(sys.executable).parent)
if _bin not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = _bin + os.pathsep + os.environ.get("PATH", "")

from instructor.nbgrader_plugins import RestoreTestCells, SkipSlowCells  # noqa: E402
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, ClearOutput, DeduplicateIds,  # noqa: E402
                                    Execute, IgnorePattern, LimitOutput, OverwriteCells, OverwriteKernelspec,
                                    SaveAutoGrades)
from nbconvert.preprocessors import ClearMetadataPreprocessor  # noqa: E402

c = get_config()  # noqa: F821 - provided by traitlets when it loads this file

c.CourseDirectory.course_id = "gpt-lab"
c.CourseDirectory.root = str(HERE)
c.CourseDirectory.db_url = f"sqlite:///{HERE / 'gradebook.db'}"
# nbgrader copies every other file of source/<assignment>/ into release/ and autograded/: keep caches out
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".pytest_cache",
                            ".hypothesis", "*.pt", "*.pth", ".DS_Store"]

# The notebook imports torch and runs the checks (hidden ones included) in each check cell.
c.Execute.timeout = 300
c.Execute.interrupt_on_timeout = True

# A test cell that writes to stderr scores 0: drop torch's harmless warnings before scoring.
c.IgnorePattern.enabled = True
c.IgnorePattern.pattern = (r"Failed to initialize NumPy|UserWarning: .*(torch|TypedStorage|NumPy|numpy)"
                           r"|^\[W[0-9 :.]*[^\]]*\] Warning:|OMP: Info")

# Sanitize: report and restore deleted / edited / metadata-stripped test cells before OverwriteCells.
c.Autograde.sanitize_preprocessors = [ClearOutput, DeduplicateIds, RestoreTestCells, OverwriteKernelspec,
                                      OverwriteCells, CheckCellMetadata]
# Autograde: cells tagged `slow` (training runs) are removed before the notebook is executed.
# (nbgrader 0.9.6's list, with SkipSlowCells first)
c.Autograde.autograde_preprocessors = [SkipSlowCells, Execute, IgnorePattern, ClearMetadataPreprocessor, LimitOutput,
                                       SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
