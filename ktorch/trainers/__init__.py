"""The training loops (`fit`/`evaluate`/`predict`) and the data adapters behind them."""
