//! hush-client: the library every hush front end uses.
