"""``cadenza live``'s threads: the input queue, the worker, the scheduler, the ledger, supervision."""
