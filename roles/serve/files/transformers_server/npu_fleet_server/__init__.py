"""OpenAI-compatible Transformers server for models vLLM cannot serve on Ascend.

Runs one model per process under gunicorn's gthread worker (never gevent or
eventlet: their monkey-patching breaks the subprocesses CANN's graph compiler
starts). Configuration comes from ``NPU_SERVE_*`` environment variables, see
``settings.py``.
"""

__version__ = "1.0.0"
