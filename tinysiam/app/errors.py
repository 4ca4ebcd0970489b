"""The errors a user can fix: the command line prints them as one line and exits with status 2.

Anything else that escapes (a TypeError, a KeyError from a library bug) keeps its
traceback, so that a bug is never disguised as a bad option.
"""
import contextlib
import zipfile


class UserError(Exception):
    """A problem with what the user asked for: a bad option value, a missing or unreadable file."""


# what reading a user's file can raise when the file (not the library) is at fault
FILE_PROBLEMS = (ValueError, OSError, EOFError, zipfile.BadZipFile)


@contextlib.contextmanager
def blame(what=None):
    """Report a problem raised while handling the user's ``what`` (e.g. "--checkpoint runs/a/best.npz") as a
    UserError; with ``what`` None the message must already name the option."""
    try:
        yield
    except FILE_PROBLEMS as error:
        raise UserError(str(error) if what is None else f"{what}: {error}") from error
