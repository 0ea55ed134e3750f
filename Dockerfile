# One image for `dealsync serve` and `dealsync worker` (the dev server is
# compiled in too, but a cluster deployment does not use it).
FROM golang:1.26.8 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /dealsync ./cmd/dealsync
# The sandbox ERP's data folder (docker-compose.yml mounts a volume there):
# owned by the image's nonroot user, which a new volume inherits.
RUN mkdir -p /data/var/lib/dealsync

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /dealsync /dealsync
COPY --from=build --chown=65532:65532 /data/var/lib/dealsync /var/lib/dealsync
ENTRYPOINT ["/dealsync"]
