module example.com/enrich-reactor

go 1.24
