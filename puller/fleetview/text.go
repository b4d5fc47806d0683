package fleetview

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Text writes one block per app/env: the stage and latest rollout, the pause,
// broken versions, the hosts table and any warning. Every string from Redis
// goes through Clean.
func Text(w io.Writer, envs []Env, now time.Time) {
	for i, e := range envs {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%s/%s  %s\n", Clean(e.App), Clean(e.Env), e.Stage)
		if e.Err != "" {
			fmt.Fprintf(w, "  UNREADABLE: %s\n", Clean(e.Err))
		}
		if p := e.Pause; p != nil {
			fmt.Fprintf(w, "  paused by %s %s: %s\n", Clean(dash(p.Actor)), Ago(now, p.At), Clean(p.Reason))
		}
		if r := e.Latest; r != nil {
			if r.Unreadable != "" {
				fmt.Fprintf(w, "  rollout %s: unreadable (%s)\n", Clean(r.Version), r.Unreadable)
			} else {
				fmt.Fprintf(w, "  rollout %s: %s\n", Clean(r.Version), progress(e, now))
			}
		}
		for _, b := range e.Broken {
			host := ""
			if b.Host != "" {
				host = "host " + Clean(b.Host) + ", "
			}
			fmt.Fprintf(w, "  broken %s: %s (%s%s)\n", Clean(b.Version), Clean(b.Reason), host, Ago(now, b.At))
		}
		if len(e.Hosts) > 0 {
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "  HOST\tVERSION\tSTATE\tLAST SEEN")
			for _, h := range e.Hosts {
				if h.Unreadable != "" {
					fmt.Fprintf(tw, "  %s\t?\tunreadable\t%s\n", Clean(h.Name), Clean(clip(h.Unreadable, 60)))
					continue
				}
				version := dash(h.Version)
				if h.Target != "" && h.Target != h.Version {
					version += " -> " + h.Target
				}
				seen := Ago(now, h.At)
				switch {
				case h.Future:
					seen = "dated in the future: " + h.At.UTC().Format(time.RFC3339) + " (clock?)"
				case !h.Live:
					seen += " (gone)"
				}
				state := dash(h.State)
				if h.Reason != "" {
					state += ": " + h.Reason
				}
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", Clean(h.Name), Clean(version), Clean(state), seen)
			}
			tw.Flush()
		}
		if e.Forgotten > 0 {
			fmt.Fprintf(w, "  forgot %d host record(s) not rewritten for forget_after\n", e.Forgotten)
		}
		if e.Warning != "" {
			fmt.Fprintf(w, "  WARNING: %s\n", Clean(e.Warning))
		}
	}
}

// progress is the rollout line after its version.
func progress(e Env, now time.Time) string {
	r := e.Latest
	state := "running"
	switch {
	case e.Stage == StageHalted && !r.Finished.IsZero():
		state = "halted " + Ago(now, r.Finished)
	case e.Stage == StageHalted:
		state = "halted"
	case !r.Finished.IsZero():
		state = "finished " + Ago(now, r.Finished)
	case e.LiveDone:
		state = "done on every live host"
	case e.Stage == StagePaused:
		state = "paused"
	case r.Stage != "":
		state = Clean(r.Stage)
	}
	extra := ""
	if r.HostFailed > 0 {
		extra += fmt.Sprintf(", %d hosts quarantined", r.HostFailed)
	}
	if r.Cap > 0 {
		extra += fmt.Sprintf(", cap %d", r.Cap)
	}
	return fmt.Sprintf("%d/%d done, %d failed%s, started %s, %s", r.Done, r.Total, r.Failed, extra, Ago(now, r.Started), state)
}

// JSON writes the view as one indented JSON document.
func JSON(w io.Writer, envs []Env) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Envs []Env `json:"envs"`
	}{envs})
}

func dash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// Ago renders how long before now t was, coarsely.
func Ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t).Round(time.Second)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds ago", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm ago", int(d.Hours()), int(d.Minutes())%60)
	}
	return t.UTC().Format("2006-01-02 15:04")
}
