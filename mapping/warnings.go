package mapping

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

// Warnings are what the file says that loads but may not mean what it
// says: a time_zone whose name reads otherwise than it counts
// (Etc/GMT+1, a legacy name such as EST or CET), a defaults.tax_rate
// written as a fraction (0.19 for 19 %). `mapping lint`, `config check`
// and the start print them; they keep nothing from loading.
func (m *File) Warnings() []Problem {
	return append([]Problem(nil), m.warnings...)
}

// warn records a warning of the file being loaded: for a file taken into
// use now only (a run's snapshot was accepted when the run started).
func (p *parser) warn(n *yaml.Node, key, format string, args ...any) {
	if !p.strict {
		return
	}
	w := Problem{File: p.file, Key: key, Message: fmt.Sprintf(format, args...)}
	if n != nil {
		w.Line, w.Column = n.Line, n.Column
	}
	p.m.warnings = append(p.m.warnings, w)
}

// etcGMTRE matches the Etc/GMT zones with an offset, whose sign is
// POSIX's: Etc/GMT+1 is UTC-01:00.
var etcGMTRE = regexp.MustCompile(`^Etc/GMT([+-])(\d{1,2})$`)

// legacyZones are the IANA names kept from before the city zones, each
// with the city zone to name instead: EST and MST are a fixed offset
// without the daylight saving of New York's or Denver's time, CET and
// the others follow a region's rules under no place's name.
var legacyZones = map[string]string{
	"EST": "America/New_York", "MST": "America/Denver", "HST": "Pacific/Honolulu",
	"EST5EDT": "America/New_York", "CST6CDT": "America/Chicago", "MST7MDT": "America/Denver", "PST8PDT": "America/Los_Angeles",
	"CET": "Europe/Berlin", "MET": "Europe/Berlin", "EET": "Europe/Athens", "WET": "Europe/Lisbon",
}

// warnZone warns of a time_zone name (loaded as loc) that reads
// otherwise than it counts: Etc/GMT+1 is UTC-01:00, EST has no daylight
// saving.
func (p *parser) warnZone(n *yaml.Node, name string, loc *time.Location) {
	winter, summer := zoneOffsets(loc)
	if m := etcGMTRE.FindStringSubmatch(name); m != nil && strings.TrimLeft(m[2], "0") != "" {
		other := "Etc/GMT-" + m[2]
		if m[1] == "-" {
			other = "Etc/GMT+" + m[2]
		}
		p.warn(n, "time_zone", "%q is %s all year, without daylight saving: the sign of the Etc/GMT zones is POSIX's, + west of Greenwich (%s is %s); "+
			"for a place's time, name its city zone, such as America/New_York or Europe/Berlin", name, utcOffset(winter), other, utcOffset(-winter))
		return
	}
	city, ok := legacyZones[name]
	if !ok {
		return
	}
	if winter == summer {
		has := ""
		if cl, err := time.LoadLocation(city); err == nil {
			if j, s := zoneOffsets(cl); j != s {
				has = " (which has daylight saving)"
			}
		}
		p.warn(n, "time_zone", "%q is a legacy zone name: %s all year, without daylight saving; for a place's time, name its city zone, such as %s%s",
			name, utcOffset(winter), city, has)
		return
	}
	p.warn(n, "time_zone", "%q is a legacy zone name: %s, %s with daylight saving, by a region's rules under no place's name; name the city zone whose time you mean, such as %s",
		name, utcOffset(min(winter, summer)), utcOffset(max(winter, summer)), city)
}

// zoneOffsets are loc's offsets from UTC in seconds in January and July
// (of a fixed year: a load warns the same whenever it runs).
func zoneOffsets(loc *time.Location) (jan, jul int) {
	_, jan = time.Date(2025, time.January, 15, 12, 0, 0, 0, time.UTC).In(loc).Zone()
	_, jul = time.Date(2025, time.July, 15, 12, 0, 0, 0, time.UTC).In(loc).Zone()
	return jan, jul
}

// utcOffset writes an offset in seconds as UTC+01:00, UTC-05:00.
func utcOffset(sec int) string {
	sign := "+"
	if sec < 0 {
		sign, sec = "-", -sec
	}
	return fmt.Sprintf("UTC%s%02d:%02d", sign, sec/3600, sec%3600/60)
}
