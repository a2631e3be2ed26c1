/* version.h - the product version, for the version resource and the events. */
#ifndef IMSVC_VERSION_H
#define IMSVC_VERSION_H

#define IMSVC_VERSION_MAJOR 0
#define IMSVC_VERSION_MINOR 1
#define IMSVC_VERSION_PATCH 0
#define IMSVC_VERSION   "0.1.0"
#define IMSVC_VERSION_W L"0.1.0"

#endif
