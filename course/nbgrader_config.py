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
# The gpt-lab checkout: its autograder/ grades each submission (in a sandboxed worker) and
# instructor/nbgrader_plugins.py holds the preprocessors below. course_init fills in _DEFAULT_ROOT.
_DEFAULT_ROOT = None
REPO = Path(os.environ.get("GPTLAB_ROOT") or _DEFAULT_ROOT or HERE.parent).resolve()
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
# creating gradebook.db runs `alembic` from PATH: the one next to this Python
_bin = str(Path(sys.executable).parent)
if _bin not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = _bin + os.pathsep + os.environ.get("PATH", "")

import warnings  # noqa: E402

# nbgrader 0.9.6 with SQLAlchemy 2 warns on every submission about its own session handling
# ("SAWarning: Object of type <SubmittedNotebook> not in session"): noise that buries the warnings that
# matter (a tampered notebook, a submission that could not be graded).
warnings.filterwarnings("ignore", message=r".*not in session, add operation along")

from instructor.nbgrader_plugins import FlagForReview, GradeInSandbox, ReadAnyNotebook, RepairStructure  # noqa: E402
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, ClearOutput, DeduplicateIds,  # noqa: E402
                                    GetGrades, LimitOutput, OverwriteCells, OverwriteKernelspec, SaveAutoGrades)
from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor  # noqa: E402
from nbconvert.preprocessors.sanitize import SanitizeHTML  # noqa: E402

c = get_config()  # noqa: F821 - provided by traitlets when it loads this file

c.CourseDirectory.course_id = "gpt-lab"
c.CourseDirectory.root = str(HERE)
c.CourseDirectory.db_url = f"sqlite:///{HERE / 'gradebook.db'}"
# nbgrader copies every other file of source/<assignment>/ into release/ and autograded/: keep caches out
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".pytest_cache",
                            ".hypothesis", "*.pt", "*.pth", ".DS_Store"]

# Grading never runs the student's notebook in nbgrader's kernel (instructor/nbgrader_plugins.py):
# the isolated grader grades the submitted file, the same as `pytest autograder --submission FILE`,
# and the check cells receive its scores. One budget per notebook, not per cell:
c.GradeInSandbox.timeout = 600
# c.GradeInSandbox.reference = "..."   # default: source/<assignment>/<notebook>.ipynb of this course

# A notebook that cannot be read (truncated, not JSON, a link) is graded "not graded" with its reason and
# feedback, instead of stopping nbgrader with a traceback for that student:
c.Autograde.exporter_class = ReadAnyNotebook
# Student text in the HTML feedback is text: nbconvert sanitises the outputs, and, since nbgrader's feedback
# template renders markdown cells itself, SanitizeHTML cleans the student's markdown cells and outputs before
# (no <script>, no event handlers); the grader's own notes are escaped text (instructor/nbgrader_plugins.py).
c.HTMLExporter.sanitize_html = True
c.GenerateFeedback.preprocessors = [GetGrades, CSSHTMLHeaderPreprocessor, SanitizeHTML]

# Sanitize: rebuild the released structure (metadata, test cells) first, then nbgrader's own checks.
c.Autograde.sanitize_preprocessors = [RepairStructure, ClearOutput, DeduplicateIds, OverwriteKernelspec,
                                      OverwriteCells, CheckCellMetadata]
# Autograde: nbgrader 0.9.6's list with GradeInSandbox in place of Execute (and nothing that reads
# a kernel's stderr: no kernel runs).
# FlagForReview after SaveAutoGrades: not graded, hung or tampered notebooks are flagged in the gradebook.
# SanitizeHTML after the grades are saved: the autograded notebook (what formgrader shows the instructor, in a
# browser with the Jupyter API behind it) holds the student's markdown and outputs as text, not live HTML.
c.Autograde.autograde_preprocessors = [GradeInSandbox, ClearMetadataPreprocessor, LimitOutput, SaveAutoGrades,
                                       FlagForReview, AssignLatePenalties, SanitizeHTML, CheckCellMetadata]
