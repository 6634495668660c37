import warnings

# futurist (pulled in by the oslo libraries) imports eventlet when it is
# installed, and eventlet warns about its own deprecation at import. Only the
# scrubber uses eventlet, knowingly; the warning would otherwise greet every
# command-line user.
warnings.filterwarnings('ignore', message=r'(?s)\s*Eventlet is deprecated')
