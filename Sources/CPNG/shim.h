// libpng (Debian libpng-dev). Swift cannot use setjmp, so only the simplified API (png_image_*) is used.
#include <png.h>
