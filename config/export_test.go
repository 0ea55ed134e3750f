package config

// SameHostPortWith is SameHostPort on a machine whose interfaces have
// the addresses local gives.
var SameHostPortWith = reachesListener
