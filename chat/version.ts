/** Which parley this is: `/metrics` reports it in `parley_build_info`. Bump it with a release. */
export const VERSION = "0.1.0";
