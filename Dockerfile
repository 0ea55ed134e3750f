# One image for `dealsync serve` and `dealsync worker` (the dev server is
# compiled in too, but a cluster deployment does not use it).
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /dealsync ./cmd/dealsync

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /dealsync /dealsync
ENTRYPOINT ["/dealsync"]
