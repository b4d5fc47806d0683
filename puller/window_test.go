package puller

import (
	"strings"
	"testing"
	"time"
)

func utc(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		panic(err)
	}
	return t
}

// In 2026 Europe/Berlin moves from CET (UTC+1) to CEST (UTC+2) on Sunday
// 29 March at 01:00 UTC, and back on Sunday 25 October at 01:00 UTC.
func TestWindowAcrossDST(t *testing.T) {
	tests := []struct {
		spec     string
		at       string // UTC
		open     bool
		change   string // UTC; "" for none within a week
		changeIs string
	}{
		// Office hours: 08:00 Berlin is 07:00 UTC in winter, 06:00 UTC in summer.
		{"Mon-Fri 08:00-17:00 Europe/Berlin", "2026-03-27 06:59", false, "2026-03-27 07:00", "opens Friday 08:00 CET"},
		{"Mon-Fri 08:00-17:00 Europe/Berlin", "2026-03-27 07:00", true, "2026-03-27 16:00", "closes Friday 17:00 CET"},
		{"Mon-Fri 08:00-17:00 Europe/Berlin", "2026-03-27 16:00", false, "2026-03-30 06:00", "next opens Monday 08:00 CEST, across the change"},
		{"Mon-Fri 08:00-17:00 Europe/Berlin", "2026-03-30 06:30", true, "2026-03-30 15:00", "closes Monday 17:00 CEST"},
		{"Mon-Fri 08:00-17:00 Europe/Berlin", "2026-03-28 12:00", false, "2026-03-30 06:00", "shut on Saturday"},
		{"Mon-Fri 08:00-17:00 Europe/Berlin", "2026-10-23 15:30", false, "2026-10-26 07:00", "Friday 17:30 CEST; next opens Monday 08:00 CET"},
		{"Mon-Fri 08:00-17:00 Europe/Berlin", "2026-10-26 06:30", false, "2026-10-26 07:00", "Monday 07:30 CET is before opening"},
		// A window containing the change itself lasts what the wall clock says.
		{"Sun 01:00-04:00 Europe/Berlin", "2026-03-29 00:00", true, "2026-03-29 02:00", "spring: 01:00 CET to 04:00 CEST is two hours"},
		{"Sun 01:00-04:00 Europe/Berlin", "2026-03-29 01:30", true, "2026-03-29 02:00", "03:30 CEST is inside"},
		{"Sun 01:00-04:00 Europe/Berlin", "2026-03-29 02:00", false, "2026-04-04 23:00", "shut at 04:00 CEST; next Sunday 01:00 CEST"},
		{"Sun 01:00-04:00 Europe/Berlin", "2026-10-24 23:00", true, "2026-10-25 03:00", "autumn: 01:00 CEST to 04:00 CET is four hours"},
		{"Sun 01:00-04:00 Europe/Berlin", "2026-10-25 02:30", true, "2026-10-25 03:00", "the repeated hour is inside"},
		// Overnight, from the named day into the next, across the change.
		{"Sat 22:00-06:00 Europe/Berlin", "2026-03-28 20:59", false, "2026-03-28 21:00", "opens Saturday 22:00 CET"},
		{"Sat 22:00-06:00 Europe/Berlin", "2026-03-29 03:59", true, "2026-03-29 04:00", "closes Sunday 06:00 CEST"},
		{"Sat 22:00-06:00 Europe/Berlin", "2026-03-29 04:00", false, "2026-04-04 20:00", "next Saturday 22:00 CEST"},
		// Lists, wrapping ranges, default zone, every day.
		{"Fri-Mon 00:00-24:00", "2026-03-31 12:00", false, "2026-04-03 00:00", "Tuesday is outside Fri-Mon"},
		{"Fri-Mon 00:00-24:00", "2026-04-04 12:00", true, "2026-04-07 00:00", "adjacent days merge: open until Tuesday"},
		{"Mon,Wed 10:00-11:00 UTC", "2026-03-31 10:30", false, "2026-04-01 10:00", "Tuesday"},
		{"09:00-10:00", "2026-03-31 09:15", true, "2026-03-31 10:00", "no days: every day, UTC"},
		{"daily 00:00-24:00 America/New_York", "2026-03-08 07:30", true, "", "always open"},
	}
	for _, tt := range tests {
		t.Run(tt.spec+" at "+tt.at, func(t *testing.T) {
			w, err := ParseWindow(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			at := utc(tt.at)
			open, change := w.Next(at)
			var want time.Time
			if tt.change != "" {
				want = utc(tt.change)
			}
			if open != tt.open || !change.Equal(want) {
				t.Fatalf("%s: Next = %v, %s; want %v, %s (%s)", tt.spec, open, change.UTC().Format("2006-01-02 15:04"), tt.open, tt.change, tt.changeIs)
			}
			if w.Open(at) != tt.open {
				t.Fatalf("Open disagrees with Next")
			}
		})
	}
}

// Stepping an injected clock minute by minute through a week that contains
// the spring change finds exactly the openings and closings Next predicts.
func TestWindowWalkAWeek(t *testing.T) {
	w, err := ParseWindow("Mon-Fri 08:00-17:00 Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	now := utc("2026-03-26 00:00") // Thursday
	open, change := w.Next(now)
	var opens, shuts []string
	for end := now.Add(7 * 24 * time.Hour); now.Before(end); now = now.Add(time.Minute) {
		o := w.Open(now)
		if o != open {
			if !now.Equal(change) {
				t.Fatalf("state changed at %s; Next had said %s", now, change)
			}
			if o {
				opens = append(opens, now.Format("Mon 15:04"))
			} else {
				shuts = append(shuts, now.Format("Mon 15:04"))
			}
			open, change = w.Next(now)
		}
	}
	if got, want := strings.Join(opens, ", "), "Thu 07:00, Fri 07:00, Mon 06:00, Tue 06:00, Wed 06:00"; got != want {
		t.Errorf("openings (UTC) %s, want %s", got, want)
	}
	if got, want := strings.Join(shuts, ", "), "Thu 16:00, Fri 16:00, Mon 15:00, Tue 15:00, Wed 15:00"; got != want {
		t.Errorf("closings (UTC) %s, want %s", got, want)
	}
}

func TestParseWindowErrors(t *testing.T) {
	for _, tt := range []struct{ spec, want string }{
		{"", "empty window"},
		{"Mon-Fri 08:00-17:00 Mars/Olympus_Mons", `unknown time zone "Mars/Olympus_Mons"`},
		{"Mon-Fri 08:00-08:00 UTC", "never opens"},
		{"Mon-Fri", "no HH:MM-HH:MM"},
		{"Mon-Fry 08:00-17:00", `"Fry" is not a day`},
		{"Mon-Fri 8:00-17:00", `"8:00" is not a time of day`},
		{"Mon-Fri 08:00-24:30", `"24:30" is not a time of day`},
		{"Mon-Fri 24:00-08:00", `"24:00" is not a time of day`},
		{"Mon-Fri 08:00", "is not HH:MM-HH:MM"},
		{"Mon-Fri 08:00-17:00 UTC extra", `unexpected "extra"`},
	} {
		if _, err := ParseWindow(tt.spec); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseWindow(%q) = %v, want an error containing %q", tt.spec, err, tt.want)
		}
	}
}
