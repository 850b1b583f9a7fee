FROM scratch
ARG SITE_VERSION
LABEL org.example.site-version=$SITE_VERSION
COPY out/site /srv/site
