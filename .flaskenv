# Read by `flask` (python-dotenv) so plain `flask ...` works from this folder.
# Non-strict: `flask forms check` must still start when a flow file is broken.
FLASK_APP=app:create_app(strict_flows=False)
