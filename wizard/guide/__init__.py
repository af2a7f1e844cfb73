"""Layer 2: what the guides say. Their numbered steps (`steps`, from assets/), the app manifest and
permissions (`manifest`), flow and protocol advice (`recommend`), the EWS retirement dates
(`retirement`), the settings sheet and runbook (`exports`) and the read-back for phone calls
(`readback`)."""
