"""One `ServiceAdapter` per service: `recuro.RecuroAdapter` (and MediaCrush's when it lands)."""
