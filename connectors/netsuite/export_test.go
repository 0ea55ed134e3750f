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

// SetCustomerPage sets how many rows a customer look-up asks for at a
// time (tests: pages without thousands of customers).
func SetCustomerPage(n int) (restore func()) {
	old := customerPage
	customerPage = n
	return func() { customerPage = old }
}

// MaxCustomerPages is maxCustomerPages (tests).
const MaxCustomerPages = maxCustomerPages

// ReadErrorDetail is errorDetail (tests).
var ReadErrorDetail = errorDetail
