from anagnorisis.store.db import Store, utc_now
from anagnorisis.store.errors import SchemaTooNew, StoreBusy, StoreError

__all__ = ["SchemaTooNew", "Store", "StoreBusy", "StoreError", "utc_now"]
