"""The typed operations over an open library that both faces call: the CLI (`anagnorisis.cli`), the Gradio tabs
and the named endpoints (`anagnorisis.ui`). Nothing here imports a face; records come back as objects, and
become JSON only at the CLI's edge."""
from anagnorisis.service.errors import BadRequest, Failed, ServiceError

__all__ = ["BadRequest", "Failed", "ServiceError"]
