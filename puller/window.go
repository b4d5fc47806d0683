package puller

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Window is a weekly deploy window in a time zone of the tz database:
// "Mon-Fri 08:00-17:00 Europe/Berlin". Hosts start deploys only while it is
// open. Its parts:
//
//   - days (optional, default every day): day names Mon..Sun, ranges
//     ("Mon-Fri", "Fri-Mon" wraps the week) and lists ("Mon,Wed,Fri-Sun");
//     "daily" says every day;
//   - the time of day it opens and closes, HH:MM-HH:MM, in the zone's wall
//     clock; a close at or before the open ("22:00-06:00") runs past
//     midnight into the next day, the day named being the opening day; 24:00
//     closes at midnight;
//   - the zone (optional, default UTC), an IANA name such as Europe/Berlin.
//
// Times follow the zone's wall clock, so a window opens at 08:00 local on
// both sides of a DST change; on a day the change shortens or lengthens, the
// window is as long as the wall clock says (08:00-17:00 on the day clocks
// jump forward at 02:00 is still nine hours; 00:00-04:00 is three).
type Window struct {
	spec       string
	days       [7]bool // by time.Weekday
	open, shut int     // minutes after midnight; shut may be <= open (overnight) or 1440
	loc        *time.Location
}

var dayNames = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

// ParseWindow parses a window spec (see Window). The error says what is
// wrong with it, including a window that never opens.
func ParseWindow(spec string) (*Window, error) {
	w := &Window{spec: spec, loc: time.UTC}
	fields := strings.Fields(spec)
	if len(fields) == 0 {
		return nil, errors.New("empty window")
	}
	i := 0
	if !strings.Contains(fields[0], ":") { // days come first
		if err := w.parseDays(fields[0]); err != nil {
			return nil, err
		}
		i++
	} else {
		for d := range w.days {
			w.days[d] = true
		}
	}
	if i >= len(fields) {
		return nil, fmt.Errorf("%q: no HH:MM-HH:MM time of day", spec)
	}
	from, to, ok := strings.Cut(fields[i], "-")
	if !ok {
		return nil, fmt.Errorf("%q: time of day %q is not HH:MM-HH:MM", spec, fields[i])
	}
	var err error
	if w.open, err = clock(from, false); err != nil {
		return nil, fmt.Errorf("%q: %w", spec, err)
	}
	if w.shut, err = clock(to, true); err != nil {
		return nil, fmt.Errorf("%q: %w", spec, err)
	}
	i++
	if i < len(fields) {
		loc, err := time.LoadLocation(fields[i])
		if err != nil || fields[i] == "Local" {
			return nil, fmt.Errorf("%q: unknown time zone %q", spec, fields[i])
		}
		w.loc = loc
		i++
	}
	if i < len(fields) {
		return nil, fmt.Errorf("%q: unexpected %q after the time zone", spec, fields[i])
	}
	if w.open == w.shut {
		return nil, fmt.Errorf("%q: the window never opens (it closes when it opens)", spec)
	}
	return w, nil
}

func (w *Window) parseDays(s string) error {
	if strings.EqualFold(s, "daily") {
		for d := range w.days {
			w.days[d] = true
		}
		return nil
	}
	for _, part := range strings.Split(s, ",") {
		from, to, isRange := strings.Cut(part, "-")
		a, ok := dayNames[strings.ToLower(from)]
		if !ok {
			return fmt.Errorf("%q: %q is not a day (Mon..Sun)", w.spec, from)
		}
		b := a
		if isRange {
			if b, ok = dayNames[strings.ToLower(to)]; !ok {
				return fmt.Errorf("%q: %q is not a day (Mon..Sun)", w.spec, to)
			}
		}
		for d := a; ; d = (d + 1) % 7 {
			w.days[d] = true
			if d == b {
				break
			}
		}
	}
	return nil
}

// clock parses HH:MM into minutes after midnight; 24:00 only as a close.
func clock(s string, isClose bool) (int, error) {
	h, m, ok := strings.Cut(s, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || len(h) != 2 || len(m) != 2 || err1 != nil || err2 != nil || mm > 59 || hh > 24 || (hh == 24 && (mm != 0 || !isClose)) {
		return 0, fmt.Errorf("%q is not a time of day HH:MM", s)
	}
	return hh*60 + mm, nil
}

// String returns the spec the window was parsed from.
func (w *Window) String() string { return w.spec }

// span is one opening of the window: [from, to).
type span struct{ from, to time.Time }

// spans lists the openings that start on the days from t-2d to t+8d (in the
// zone), in order, adjacent ones merged.
func (w *Window) spans(t time.Time) []span {
	local := t.In(w.loc)
	y, m, d := local.Date()
	var out []span
	for off := -2; off <= 8; off++ {
		day := time.Date(y, m, d+off, 12, 0, 0, 0, w.loc)
		if !w.days[day.Weekday()] {
			continue
		}
		dy, dm, dd := day.Date()
		from := time.Date(dy, dm, dd, w.open/60, w.open%60, 0, 0, w.loc)
		shutDay := dd
		if w.shut <= w.open {
			shutDay++
		}
		to := time.Date(dy, dm, shutDay, w.shut/60, w.shut%60, 0, 0, w.loc) // 24:00 normalises to the next midnight
		if !to.After(from) {
			continue // both ends fell in one skipped hour of a DST change
		}
		if n := len(out); n > 0 && !from.After(out[n-1].to) {
			if to.After(out[n-1].to) {
				out[n-1].to = to
			}
			continue
		}
		out = append(out, span{from, to})
	}
	return out
}

// Open reports whether the window is open at t.
func (w *Window) Open(t time.Time) bool {
	open, _ := w.Next(t)
	return open
}

// Next reports whether the window is open at t and when that changes: when
// open, the time it closes (zero when it stays open for more than a week,
// as "00:00-24:00" every day does); when shut, the time it next opens.
func (w *Window) Next(t time.Time) (open bool, change time.Time) {
	spans := w.spans(t)
	for i, s := range spans {
		if !t.Before(s.from) && t.Before(s.to) {
			if i == len(spans)-1 {
				return true, time.Time{}
			}
			return true, s.to
		}
		if s.from.After(t) {
			return false, s.from
		}
	}
	return false, time.Time{} // unreachable for a parsed window: one opens within a week
}
