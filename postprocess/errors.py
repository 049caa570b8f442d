"""UserError: the one error type for input a user can fix (an option, a file, a model, a value)."""


class UserError(ValueError):
    """Input refused. The message names the problem and the fix; the command line prints it as one line, exit code 2.

    Every floor raises it. A ValueError, so code that catches ValueError (Python's convention for bad arguments)
    still catches it.
    """
