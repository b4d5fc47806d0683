package redislock_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aptfleet/aptfleet/puller/redislock"
)

// Acquire a deploy slot for hello/production, sized from the live membership,
// and run each destructive step only while the lease is alive.
func ExampleSemaphore_Acquire() {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", Password: "auth-token"})
	sem := redislock.New(rdb, redislock.Options{TTL: 30 * time.Second, Logger: slog.Default()})
	alive := func() int { return 9 } // e.g. gossip.Member.Alive("hello", "production")

	ctx := context.Background()
	lease, err := sem.Acquire(ctx, func() redislock.Request {
		return redislock.Request{
			Key:         "hello:production",
			Host:        "i-0abc",
			Cap:         max(1, alive()/3), // fraction 1/3
			SmallestCap: true,
		}
	})
	if err != nil {
		fmt.Println("no slot:", err)
		return
	}
	defer lease.Release(context.WithoutCancel(ctx))
	for _, step := range []string{"drain", "install", "restart"} {
		if !lease.Alive() {
			fmt.Println("lease lost before", step, context.Cause(lease.Context()))
			return
		}
		_ = step // run the step under lease.Context()
	}
}
