"""Writing analytics events: the recorder (bounded queue + writer thread) and, for the
origin, the writer process it runs in and the link that feeds it."""
