package quickbooks

// PrefsOffFor lets tests shorten how long "multicurrency off" is believed.
var PrefsOffFor = &prefsOffFor

// NotesDeal is notesDeal, for tests.
var NotesDeal = notesDeal

// StaleCustomer is staleCustomer, for tests.
var StaleCustomer = staleCustomer

// ErrorDetail is errorDetail, for tests.
var ErrorDetail = errorDetail
