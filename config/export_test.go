package config

// SameHostPortWith is SameHostPort on a machine whose interfaces have
// the addresses local gives.
var SameHostPortWith = reachesListener

// AddrCache keeps the addresses of this machine's interfaces, read, for
// a few seconds (InterfaceIPsLife).
type AddrCache = addrCache

// CachedIPs is c's addresses at now, read by read when they are not kept.
var CachedIPs = (*addrCache).get

const InterfaceIPsLife = interfaceIPsLife

// ShortFor is the known key that k writes the first words of.
var ShortFor = shortFor
