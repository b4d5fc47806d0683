package s3_test

import (
	"context"
	"log"
	"strings"

	"github.com/aptfleet/aptfleet/repo"
	"github.com/aptfleet/aptfleet/repo/s3"
)

// A repository under apt/hello/ in a bucket on an S3-compatible server; the
// credentials come from the AWS SDK's default chain.
func ExampleNew() {
	ctx := context.Background()
	cfg := s3.DefaultConfig()
	cfg.Bucket = "fleet-apt"
	cfg.Prefix = "apt/hello"
	cfg.Endpoint = "http://127.0.0.1:7070" // path-style is implied for an IP address
	st, err := s3.New(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	// Create-only: fails with repo.ErrPrecondition if the key exists.
	data := "Origin: aptfleet\n"
	if _, err := st.Put(ctx, "dists/staging/Release", strings.NewReader(data), int64(len(data)), repo.PutOptions{IfNoneMatch: true}); err != nil {
		log.Fatal(err)
	}
}
