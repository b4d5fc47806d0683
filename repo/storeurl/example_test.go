package storeurl_test

import (
	"fmt"

	"github.com/aptfleet/aptfleet/repo/storeurl"
)

func ExampleParse() {
	for _, raw := range []string{"s3://my-bucket/apt/hello/", "file:///srv/apt", "./repo", "s3://My_Bucket/apt"} {
		loc, err := storeurl.Parse(raw)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("%s: %s\n", loc.Kind, loc)
	}
	// Output:
	// s3: s3://my-bucket/apt/hello
	// dir: /srv/apt
	// dir: ./repo
	// bad repository URL "s3://My_Bucket/apt": invalid bucket name "My_Bucket" (3-63 lowercase letters, digits, dots and hyphens)
}
