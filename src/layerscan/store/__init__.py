"""Where layer blobs are kept between analyses: the LRU layer cache (`layers`)."""
