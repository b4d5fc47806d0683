package wait_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aptfleet/aptfleet/internal/wait"
)

func TestSleep(t *testing.T) {
	if err := wait.Sleep(context.Background(), time.Millisecond); err != nil {
		t.Errorf("Sleep = %v, want nil", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// An hour-long sleep on a cancelled context returns at once with its error;
	// if it did not, the test would hang until its timeout.
	if err := wait.Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("Sleep on a cancelled context = %v, want context.Canceled", err)
	}
}
