package netsuite

import "time"

// SetCurrenciesFor shortens how long read currencies are believed (tests).
func SetCurrenciesFor(d time.Duration) (restore func()) {
	old := currenciesFor
	currenciesFor = d
	return func() { currenciesFor = old }
}

// UnknownColumn is unknownColumn (tests).
var UnknownColumn = unknownColumn
