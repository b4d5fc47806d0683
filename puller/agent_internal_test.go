package puller

import (
	"fmt"
	"testing"
	"time"
)

func TestCapFor(t *testing.T) {
	tests := []struct {
		fraction float64
		alive    int
		want     int
	}{
		{1.0 / 3, 300, 100}, {1.0 / 3, 100, 33}, {1.0 / 3, 10, 3}, {1.0 / 3, 2, 1},
		{0.25, 0, 1}, {1, 7, 7}, {0.5, 5, 2},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%v of %d", tt.fraction, tt.alive), func(t *testing.T) {
			if got := capFor(tt.fraction, tt.alive); got != tt.want {
				t.Errorf("capFor = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestJitterOffsetSpreadsHosts(t *testing.T) {
	seen := map[time.Duration]bool{}
	for i := 0; i < 50; i++ {
		off := jitterOffset(fmt.Sprintf("i-%d", i), 30*time.Second)
		if off < 0 || off >= 30*time.Second {
			t.Fatalf("offset %s outside [0, 30s)", off)
		}
		if off != jitterOffset(fmt.Sprintf("i-%d", i), 30*time.Second) {
			t.Fatal("offset not stable for a host")
		}
		seen[off/time.Second] = true
	}
	if len(seen) < 15 {
		t.Errorf("50 hosts fell in only %d distinct seconds of 30", len(seen))
	}
}
