from anagnorisis.store.db import Store, utc_now
from anagnorisis.store.errors import LockWaitAbandoned, SchemaTooNew, StoreBusy, StoreError

__all__ = ["LockWaitAbandoned", "SchemaTooNew", "Store", "StoreBusy", "StoreError", "utc_now"]
